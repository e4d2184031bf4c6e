"""Natural keys have one semantics at every depth (issue 13, point 1).

Numbers compare by value, strings exactly, a string never equals a number, ``true`` is not
``1``, and a non-finite number anywhere inside a key value makes the row a ``non_finite_key``
reject rather than a key that collides with ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.stages.keys import NonFiniteKeyError, key_digest, key_part
from tests.conftest import encode_row
from tests.test_merge_bad_input import OUTPUT, assert_accounting, read_manifest, read_rejects, write_bytes

FIELDS = ("src_sha256", "encoder", "preset", "crf")


class _NonFiniteError(Exception):
    """The model's way of saying "not a key"."""


def _model(value: Any) -> Any:
    """The contract in a few lines: numbers by exact value, strings exactly, bools and null apart."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise _NonFiniteError
        return ("number", Fraction(value))
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null",)
    if isinstance(value, list):
        return ("list", tuple(_model(item) for item in value))
    return ("object", frozenset((name, _model(item)) for name, item in value.items()))


def _respell(value: Any, draw: Callable[..., Any]) -> Any:
    """The same value as another writer might spell it: integral numbers as ints or floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) < 2**53 and draw(st.booleans()):
            return float(value)
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and draw(st.booleans()):
            return int(value)
        return value
    if isinstance(value, list):
        return [_respell(item, draw) for item in value]
    return {name: _respell(item, draw) for name, item in reversed(list(value.items()))}


# Few distinct leaves, so equal values turn up often.
_LEAVES = st.one_of(
    st.sampled_from([0, 1, 23, -1, 2**63, 2**64, 10**30, -(10**25)]),
    st.sampled_from([0.0, -0.0, 1.0, 23.0, 23.5, 1e300, float("nan"), float("inf"), float("-inf")]),
    st.sampled_from(["", "23", "a", "NaN", "null", "1"]),
    st.booleans(),
    st.none(),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "k"]), inner, max_size=3),
    max_leaves=8,
)


def _digest(value: Any) -> bytes | None:
    try:
        return key_digest({**dict.fromkeys(FIELDS, "x"), "crf": value}, FIELDS)
    except NonFiniteKeyError as exc:
        field_name = exc.field_name
    assert field_name == "crf"
    return None


def _expected(value: Any) -> Any:
    try:
        return _model(value)
    except _NonFiniteError:
        return None


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_key_digest_follows_the_model(data: st.DataObject) -> None:
    left = data.draw(_VALUES)
    right = _respell(left, data.draw) if data.draw(st.booleans()) else data.draw(_VALUES)
    left_model, right_model = _expected(left), _expected(right)
    left_digest, right_digest = _digest(left), _digest(right)
    assert (left_digest is None) == (left_model is None), left
    assert (right_digest is None) == (right_model is None), right
    if left_model is not None and right_model is not None:
        assert (left_digest == right_digest) == (left_model == right_model), (left, right)


@pytest.mark.parametrize(
    "value",
    [
        [float("nan")],
        {"k": [float("inf")]},
        {"a": {"b": [1, float("-inf")]}},
        [[[[float("nan")]]]],
    ],
)
def test_non_finite_inside_a_key_value_is_not_a_key(value: Any) -> None:
    with pytest.raises(NonFiniteKeyError) as caught:
        key_digest({**dict.fromkeys(FIELDS, "x"), "crf": value}, FIELDS)
    assert caught.value.field_name == "crf"
    with pytest.raises(NonFiniteKeyError):
        key_part(value)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": 23}, {"a": 23.0}),
        ([1, 2.0], [1.0, 2]),
        ({"a": [{"b": 0}]}, {"a": [{"b": -0.0}]}),
        ([2**64], [float(2**64)]),
        ({"b": 1, "a": 2}, {"a": 2, "b": 1}),
    ],
)
def test_nested_numbers_compare_by_value(left: Any, right: Any) -> None:
    assert key_part(left) == key_part(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ([1], [True]),
        ([0], [False]),
        ([None], [0]),
        (["23"], [23]),
        ({"a": None}, {}),
        ([[1, 2]], [[1], [2]]),
        (["a", "b"], ["ab"]),
        ([10**30], [10**30 + 1]),
    ],
)
def test_nested_distinct_values_stay_distinct(left: Any, right: Any) -> None:
    assert key_part(left) != key_part(right)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**40, [2**70], {"a": [-(10**50)]}])
def test_integers_beyond_64_bits_are_exact_keys(value: Any) -> None:
    assert key_part(value) != key_part(value + 1 if isinstance(value, int) else [value])
    key_digest({**dict.fromkeys(FIELDS, "x"), "crf": value}, FIELDS)


def test_deeply_nested_key_value_is_a_key() -> None:
    deep: Any = 1
    respelled: Any = 1.0
    for _ in range(2000):
        deep, respelled = [deep], {"a": [respelled]}["a"]
    assert key_part(deep) == key_part(respelled)
    assert key_part(deep) != key_part([deep])


def _line(**overrides: Any) -> bytes:
    return json.dumps(encode_row(**overrides)).encode()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([float("nan")], [None]),
        ({"k": [float("nan")]}, {"k": [None]}),
        ({"k": float("inf")}, {"k": None}),
    ],
)
def test_merge_does_not_merge_non_finite_with_null(cli: Any, tmp_path: Path, first: Any, second: Any) -> None:
    (tmp_path / "params.yaml").write_text(
        "merge:\n  dedup:\n    key: [src_sha256, encoder, preset, crf, extra_params]\n", encoding="utf-8"
    )
    write_bytes(tmp_path / "in/a.jsonl", _line(extra_params=first) + b"\n" + _line(extra_params=second) + b"\n")

    result = cli("merge", "in/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    [kept] = (tmp_path / OUTPUT).read_bytes().splitlines()
    assert json.loads(kept)["extra_params"] == second
    [reject] = read_rejects(tmp_path)
    assert (reject["reason"], reject["line"]) == ("non_finite_key", 1)
    counters = read_manifest(tmp_path)["counters"]
    assert (counters["duplicates"], counters["rejected_non_finite_key"]) == (0, 1)
    assert_accounting(counters)


def test_merge_dedups_nested_numbers_by_value(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        "merge:\n  dedup:\n    key: [src_sha256, encoder, preset, crf, extra_params]\n", encoding="utf-8"
    )
    write_bytes(
        tmp_path / "in/a.jsonl",
        _line(extra_params={"a": 23})
        + b"\n"
        + _line(extra_params={"a": 23.0})
        + b"\n"
        + _line(extra_params={"a": [2**70]})
        + b"\n",
    )

    result = cli("merge", "in/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    assert len((tmp_path / OUTPUT).read_bytes().splitlines()) == 2
    assert read_manifest(tmp_path)["counters"]["duplicates"] == 1
