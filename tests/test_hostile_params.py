"""Non-finite or absurd numeric params are refused with line:column (issue 13, point 2).

The check lives in ``GroupReader.number()``, so every numeric param (range slack, scale
bounds, whatever is added next) gets it; the CLI cases go through the real aggregate.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corpusprov.errors import ParamsError
from corpusprov.params.load import MAX_MAGNITUDE, load_params
from tests.conftest import Cli
from tests.hostile import assert_clean_failure
from tests.test_aggregate_bad_input import edited, good_shard, locate, with_scale, write_params

CASES = {
    "range_slack .nan": (edited(("range_slack: 0.05", "range_slack: .nan")), "range_slack: .nan"),
    "range_slack .inf": (edited(("range_slack: 0.05", "range_slack: .inf")), "range_slack: .inf"),
    "range_slack 1e300": (edited(("range_slack: 0.05", "range_slack: 1e300")), "range_slack: 1e300"),
    "max .inf": (
        with_scale("    zz:\n      min: 1\n      max: .inf\n      higher_is_better: true\n      label: 1-5-acr\n"),
        "max: .inf",
    ),
    "min -.inf": (
        with_scale("    zz:\n      min: -.inf\n      max: 5\n      higher_is_better: true\n      label: 1-5-acr\n"),
        "min: -.inf",
    ),
    "span overflows": (
        with_scale(
            "    zz:\n      min: -1e308\n      max: 1e308\n      higher_is_better: true\n      label: 1-5-acr\n"
        ),
        "min: -1e308",
    ),
    "max .nan": (
        with_scale("    zz:\n      min: 1\n      max: .NaN\n      higher_is_better: true\n      label: 1-5-acr\n"),
        "max: .NaN",
    ),
}


@pytest.mark.parametrize("command", ["aggregate", "scales"])
@pytest.mark.parametrize(("text", "anchor"), CASES.values(), ids=CASES.keys())
def test_absurd_numbers_are_params_errors_with_position(
    cli: Cli, tmp_path: Path, text: str, anchor: str, command: str
) -> None:
    write_params(tmp_path, text)
    good_shard(tmp_path)
    line_no, column = locate(text, anchor)
    args = ["aggregate", "in/a.jsonl", "--output", "out/u.jsonl"] if command == "aggregate" else ["scales"]

    result = cli(*args)

    line = assert_clean_failure(result, 2)
    assert line.startswith(f"corpusprov: error: params.yaml:{line_no}:{column}: "), line
    assert "finite" in line or "magnitude" in line, line
    assert not (tmp_path / "out").exists()


def _reader(tmp_path: Path, value: str) -> Any:
    (tmp_path / "p.yaml").write_text(f"group:\n  x: {value}\n", encoding="utf-8")
    return load_params(tmp_path / "p.yaml", "p.yaml", required=True).group("group")


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10**400), max_value=10**400))
def test_number_is_finite_and_sane_or_refused(tmp_path_factory: pytest.TempPathFactory, value: float) -> None:
    folder = tmp_path_factory.mktemp("num", numbered=True)
    written = (
        repr(value)
        if isinstance(value, int) or math.isfinite(value)
        else (".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf"))
    )
    reader = _reader(folder, written)
    sane = (isinstance(value, int) and abs(value) <= MAX_MAGNITUDE) or (
        isinstance(value, float) and math.isfinite(value) and abs(value) <= MAX_MAGNITUDE
    )
    if sane:
        assert reader.number("x", 0.0) == float(value)
    else:
        with pytest.raises(ParamsError) as caught:
            reader.number("x", 0.0)
        assert (caught.value.line, caught.value.column) == (2, 3)


def test_a_caller_may_allow_a_larger_magnitude(tmp_path: Path) -> None:
    assert _reader(tmp_path, "1e15").number("x", 0.0, magnitude=1e18) == 1e15
    with pytest.raises(ParamsError):
        _reader(tmp_path, "1e15").number("x", 0.0)
    with pytest.raises(ParamsError, match="at most"):
        _reader(tmp_path, "5").number("x", 0.0, maximum=4)
