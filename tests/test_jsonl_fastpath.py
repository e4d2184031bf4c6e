"""The fast parse path agrees with the careful one on every line, and real-shaped rows take it."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.io.canonical import canonical_line
from corpusprov.io.rowparse import (
    NATIVE_SCAN,
    fast_path_takes,
    long_integer_py,
    parse_row,
    parse_row_careful,
    parse_row_written,
    quote_count_py,
    substitute_non_finite_py,
)
from tests.conftest import HAVE_C_COMPILER

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import realshape


def _outcome(parse: Any, raw: bytes) -> tuple[Any, ...]:
    """What a caller can observe: the canonical bytes and flag, or the error's reason and text."""
    try:
        row, special = parse(raw)
    except Exception as problem:
        return (
            "error",
            type(problem).__name__,
            getattr(problem, "reason", None),
            str(problem),
            getattr(problem, "fix", None),
            getattr(problem, "at_end", None),
        )
    return ("row", canonical_line(row, special=special), special)


def _written(raw: bytes) -> tuple[Any, ...]:
    """:func:`parse_row_written` as a caller sees it; the line it hands over must be the writer's."""
    lines: list[tuple[bytes, bytes]] = []

    def parse(text: bytes) -> tuple[dict[str, Any], bool]:
        row, special, line = parse_row_written(text)
        lines.append((line, canonical_line(row, special=special)))
        return row, special

    outcome = _outcome(parse, raw)
    for handed, fresh in lines:
        assert handed == fresh
    return outcome


_keys = st.one_of(
    st.sampled_from(["a", "b", "src", "crf", "NaN", "Infinity", "k:", 'q"', "b\\", ""]), st.text(max_size=6)
)
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-6, max_value=1e-3),  # repr: 20+ positional digits, or 4.0116e-05
    st.sampled_from([0.00012457020440578858, 4.0116e-05, -0.0, 1e16, 1e300, 5e-324]),
)
_ints = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**19]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    _floats,
    st.text(max_size=8),
    st.sampled_from(["NaN", "Infinity", "-Infinity", 'x": NaN', "東京"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.lists(st.tuples(_keys, inner), max_size=3)),
    max_leaves=8,
)
_SEPARATORS = [(", ", ": "), (",", ":"), (" , ", " : "), (",", " :"), (",\t", ":\t"), (",", ": ")]


def _dump(value: Any, ensure_ascii: bool, separators: tuple[str, str]) -> str:
    """JSON text in one style; lists of pairs become objects that may repeat a key."""
    if isinstance(value, list) and value and all(isinstance(item, tuple) for item in value):
        item_sep, key_sep = separators
        return (
            "{"
            + item_sep.join(
                json.dumps(key, ensure_ascii=ensure_ascii) + key_sep + _dump(item, ensure_ascii, separators)
                for key, item in value
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + separators[0].join(_dump(item, ensure_ascii, separators) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


@st.composite
def json_lines(draw: st.DrawFn) -> bytes:
    """One line as many writers write them: styles, escapes, tokens, big ints, duplicate keys."""
    pairs = draw(st.lists(st.tuples(_keys, _values), max_size=6))
    ensure_ascii = draw(st.booleans())
    separators = draw(st.sampled_from(_SEPARATORS))
    if draw(st.booleans()):
        pairs = sorted(dict(pairs).items())
    text = _dump(pairs, ensure_ascii, separators) if pairs else "{}"
    if draw(st.integers(0, 9)) == 0:
        text = "[" + text + "]"
    raw = text.encode("utf-8")
    cut = draw(st.integers(0, 12))
    if cut == 1 and len(raw) > 1:
        raw = raw[: draw(st.integers(1, len(raw) - 1))]  # a truncated write
    elif cut == 2:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"NaN", b"\\", b'"', b"\xff", b" ", b"{", b":1"])) + raw[at:]
    return raw


@settings(max_examples=2000, deadline=None)
@given(json_lines())
def test_fast_path_agrees_with_the_careful_path(raw: bytes) -> None:
    careful = _outcome(parse_row_careful, raw)
    assert _outcome(parse_row, raw) == careful
    assert _written(raw) == careful


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 0.00012457020440578858, "b": 4.0116e-05, "c": [1, 2]}',  # full-precision floats
        b'{"a": NaN, "b": -Infinity, "c": Infinity, "s": "NaN"}',  # bare tokens
        b'{"src": "/corpus/\\u6771\\u4eac_4588.yuv", "n": 1}',  # \u escapes
        b'{"size": 123456789012345678, "crf": 23, "t": 1e+300}',  # 18 digits: fits 64 bits
    ],
)
def test_real_shaped_lines_take_the_fast_path(raw: bytes) -> None:
    assert fast_path_takes(raw)
    assert fast_path_takes(raw, write=True)
    assert _outcome(parse_row, raw) == _written(raw) == _outcome(parse_row_careful, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 18446744073709551616}',  # beyond 64 bits: orjson would read a float
        b'{"a": [-9223372036854775809]}',
        b'{"a": 18446744073709551615}',  # 19+ digits are sent careful, even when they fit
        b'{"a": 1, "a": 2}',  # duplicate key
        b'{"a" : 1, "a": 2, "b": 3}',  # duplicate hidden behind a spaced key
        b'{"a": NaN, "a": 1}',
        b'{"q": "say \\"hi\\"", "a": NaN}',  # escaped quote
        b'{"a": {"b": NaN}}',  # a token in a nested object
        b'{"a": [NaN]}',  # a token in a list
        b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}",  # deeper than the writer writes
        b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}",  # deeper than orjson reads
        b'{"a": "\\u0022", "a": "x"}',  # an escaped quote hides a duplicate from the quote count
    ],
)
def test_lines_that_need_the_careful_path_take_it(raw: bytes) -> None:
    assert not fast_path_takes(raw)
    assert not fast_path_takes(raw, write=True)
    assert _outcome(parse_row, raw) == _written(raw) == _outcome(parse_row_careful, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":NaN,"b":-Infinity,"c":Infinity}',  # compact, as our own output is read again
        b'{"k": ": NaN"}',  # a string that opens with what follows a key
        b'{"k": ":NaN", "j": NaN}',
        b'{"k": "x", "": NaN}',  # an empty key
        b'{"a": NaN, "b": "\\u00e9 NaN"}',
        b'{"\\u0061": NaN}',  # an escaped key: only the careful path can name it
        b'{"a": NaNx}',
        b'{"a": -NaN}',
        b'{"a": 1, "b": "k": NaN}',
        b'{"a": NaN NaN}',
        b'{"a": NaN, "a": NaN}',
    ],
)
def test_non_finite_tokens_next_to_strings_never_mislead_the_fast_path(raw: bytes) -> None:
    assert _outcome(parse_row, raw) == _written(raw) == _outcome(parse_row_careful, raw)


def test_real_shaped_encode_rows_all_take_the_fast_path() -> None:
    plan = realshape.encode_shard_plan(600)
    rows = realshape.iter_real_encode_rows(random.Random(1), plan)
    lines = [realshape.dump_line(row, "").encode() for _, row in rows]
    assert sum(b"NaN" in line for line in lines) > 100  # the sample really has tokens,
    assert sum(b"\\u" in line for line in lines) > 30  # escapes, and 20-digit floats
    slow = [line for line in lines if not fast_path_takes(line)]
    assert slow == []
    assert [line for line in lines if not fast_path_takes(line, write=True)] == []
    for line in lines[:100]:
        assert _outcome(parse_row, line) == _outcome(parse_row_careful, line)
        assert not math.isnan(parse_row(line)[0]["crf"])


def test_the_bench_probe_reports_the_careful_path_share(tmp_path: Path) -> None:
    # `make bench` prints this share per case; it must probe the parser the stage runs.
    import corpora

    for corpus in (corpora.real_encode_corpus(tmp_path, 400, 0), corpora.real_mos_corpus(tmp_path, 400, 0)):
        share, sampled = corpora.slow_path_share(corpus)
        assert (share, sampled) == (0.0, 400), corpus.kind


# The native byte checks (src/corpusprov/_bytescan.c) against their pure-Python references,
# on bytes made of the pieces the checks look for: digits, the bytes that may stand before
# an integer, quotes, colons, NaN/Infinity tokens, backslashes, braces and the marker.
_PIECES = st.sampled_from(
    [
        b"0",
        b"7",
        b"1234567890",
        b"9" * 19,
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b":",
        b",",
        b"[",
        b"-",
        b".",
        b"e",
        b"+",
        b'"',
        b'"k"',
        b'": ',
        b'":',
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"\\",
        b"{",
        b"}",
        b"x",
        b"\xc3\xa9",
        b"\xff",
        b'"corpusprov-m"',
    ]
)
_SCAN_BYTES = st.lists(_PIECES, max_size=40).map(b"".join) | st.binary(max_size=60)
_MARK = b'"corpusprov-m"'


def _native() -> Any:
    if not NATIVE_SCAN:
        pytest.skip("the native byte checks are not built here")
    import corpusprov._bytescan as native

    return native


def test_the_native_byte_checks_were_built() -> None:
    """`pip install` builds corpusprov._bytescan wherever there is a C compiler (CI has one)."""
    if not HAVE_C_COMPILER:
        pytest.skip("no C compiler here: the pure-Python checks are in use")
    assert NATIVE_SCAN


@settings(max_examples=3000, deadline=None)
@given(_SCAN_BYTES)
def test_native_byte_checks_agree_with_the_python_ones(raw: bytes) -> None:
    _agree(raw)


def _agree(raw: bytes) -> None:
    native = _native()
    assert native.quote_count(raw) == quote_count_py(raw)
    assert native.long_integer(raw) is long_integer_py(raw)
    expected = substitute_non_finite_py(raw, _MARK)
    got = native.substitute_non_finite(raw, _MARK)
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert got[0] == expected[0]
    assert [(key, repr(value)) for key, value in got[1]] == [(key, repr(value)) for key, value in expected[1]]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN, "b": -Infinity, "c": Infinity}',
        b'{"a":NaN}',
        b"Infinity",
        b'Infinity":-',
        b"NaN",
        b'"k": NaN',
        b'{"\xff": NaN}',
        b'{"a\\u0041": NaN}',
        b'{"a": 1} {"b": NaN}',
        b" " + b"1" * 19,
        b"x" + b"1" * 40,
        b"",
    ],
)
def test_native_byte_checks_agree_on_edge_lines(raw: bytes) -> None:
    _agree(raw)


def test_quote_count_counts_past_255_in_a_block() -> None:
    native = _native()
    for size in (0, 1, 254, 255, 256, 511, 4096, 70_000):
        assert native.quote_count(b'"' * size) == size
        assert native.quote_count((b'a"' * size)[:size]) == size // 2


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"", b" ", b":", b",", b"[", b"-", b".", b"e", b"x", b'"', b"\n"]), st.integers(0, 40)
        ),
        max_size=12,
    )
)
def test_native_long_integer_agrees_on_digit_runs(parts: list[tuple[bytes, int]]) -> None:
    """Runs of digits of every length around 19, at every offset, after every kind of byte."""
    native = _native()
    raw = b"".join(before + b"7" * length for before, length in parts)
    assert native.long_integer(raw) is long_integer_py(raw)


_ROW_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0])
    | st.text(max_size=4),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=3), children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=2000, deadline=None)
@given(_ROW_VALUES)
def test_native_non_finite_count_agrees_with_the_python_one(row: Any) -> None:
    from corpusprov.stages.rowpolicy import non_finite_count_py

    native = _native()
    assert native.non_finite_count(row) == non_finite_count_py(row)


def test_non_finite_count_walks_deep_rows_and_only_exact_types() -> None:
    from corpusprov.stages.rowpolicy import non_finite_count, non_finite_count_py

    deep: Any = [math.nan]
    for _ in range(5000):  # deeper than any recursion limit: both walks keep their own stack
        deep = {"x": [deep, math.inf]}
    assert non_finite_count(deep) == non_finite_count_py(deep) == 5001

    class Tagged(float):
        pass

    # A float subclass (or a tuple) is not walked by either: parsed rows hold none.
    row = {"a": Tagged("nan"), "b": (math.nan,), "c": [math.nan, {"d": -math.inf}]}
    assert non_finite_count(row) == non_finite_count_py(row) == 2
