# Two commands matter: `make demo` and `make test`. Both set up the venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DVC_NO_ANALYTICS := 1

.PHONY: setup demo test lint bench clean

$(BIN)/corpusprov: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(BIN)/corpusprov

## demo: build the sample corpora and run the whole pipeline under DVC
demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" ./scripts/demo.sh

## test: lint, type-check and run the test suite
test: setup lint
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
