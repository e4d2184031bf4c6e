"""The native merge fast path (``_bytescan.merge_rows``) answers exactly as the Python path, or not at all.

For every line it takes, a block's result (output line, row tuple, counters) is the Python
path's; every other line goes the Python way. Real-shaped rows take it.
"""

from __future__ import annotations

import json
import random
import sys
from array import array
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.io.jsonl import Block, JsonlOptions
from corpusprov.params.stages import MergeParams
from corpusprov.stages.keys import DigestSet
from corpusprov.stages.merge import (
    NATIVE_KEEP_FIRST,
    NATIVE_MERGE_ROWS,
    keep_first_py,
    merge_block_function,
    native_prepass,
)
from corpusprov.stages.rowpolicy import BlockResult
from tests.conftest import HAVE_C_COMPILER

try:
    from corpusprov._digests import keep_first_block
except ImportError:  # no C compiler here
    keep_first_block = None  # type: ignore[assignment]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import realshape

#: A small row contract, so generated rows often carry every key and sometimes miss one.
_REQUIRED = ("src_sha256", "encoder", "preset", "crf", "vmaf_score")
_KEY = ("src_sha256", "encoder", "preset", "crf")


def _params(**changes: Any) -> MergeParams:
    return replace(MergeParams(required_keys=_REQUIRED, dedup_key=_KEY), **changes)


def _outcome(params: MergeParams, lines: list[bytes], *, native: bool) -> Any:
    """The block's result as the stage sees it, or the error it raises (type and message)."""
    function = merge_block_function(params, native=native)
    try:
        result = function(Block("grid.jsonl", 1, lines, False))
    except Exception as problem:
        return ("error", type(problem).__name__, str(problem))
    return result


def _require_native() -> None:
    if not NATIVE_MERGE_ROWS:
        pytest.skip("the native merge fast path is not built here")


def test_the_native_merge_fast_path_was_built() -> None:
    """`pip install` builds it wherever there is a C compiler (CI has one)."""
    if not HAVE_C_COMPILER:
        pytest.skip("no C compiler here: the Python path is in use")
    assert NATIVE_MERGE_ROWS


_SCALARS = (
    st.integers(-1000, 1000)
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, 23.0, 1e16, 5e-05, 0.00012457020440578858, 4.0116e-05, 2.5])
    | st.text(max_size=6)
    | st.sampled_from(["", "x264", "fast", 'q"uote', "back\\slash", "東京", "\ud83d\ude00", "NaN", "Infinity"])
    | st.booleans()
    | st.none()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b"]), children, max_size=2)
    ),
    max_leaves=6,
)
_NAMES = st.sampled_from(["extra_params", "adm2_mean", "aNaN", "Infinity", "src", "é", "crf"])


@st.composite
def _rows(draw: st.DrawFn) -> dict[str, Any]:
    """Every required key most of the time (key fields mostly scalar), a few more keys, one missing now and then."""
    row = {name: draw(_SCALARS if draw(st.integers(0, 4)) else _VALUES) for name in _REQUIRED}
    row |= draw(st.dictionaries(_NAMES, _VALUES, max_size=4))
    if draw(st.integers(0, 9)) == 0:
        del row[draw(st.sampled_from(_REQUIRED))]
    return row


_PLAIN = (
    st.integers(-1000, 10**18)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([23.0, 4.0, 1e300, 0.5, -0.0, 1e-7, float("nan"), float("inf"), float("-inf")])
    | st.text(max_size=8)
    | st.booleans()
    | st.none()
)
_PLAIN_ROWS = st.fixed_dictionaries(
    dict.fromkeys(_REQUIRED, _PLAIN),
    optional={
        "extra_params": st.lists(st.text(max_size=6), max_size=3),
        "adm2_mean": _PLAIN,
        "enc_internal_mv_std": _PLAIN,
        "src": st.sampled_from(["/corpus/東京_4588.yuv", "/c/a.yuv", 'a"b', "a\\b"]),
    },
)


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    """A row as vmaf-tune or another writer puts it on a line, sometimes broken on purpose."""
    row = draw(_PLAIN_ROWS | _rows())
    separators = draw(st.sampled_from([(", ", ": "), (", ", ": "), (",", ":"), (" , ", " : ")]))
    text = json.dumps(row, sort_keys=draw(st.booleans()), separators=separators, ensure_ascii=draw(st.booleans()))
    edit = draw(st.sampled_from(["none"] * 6 + ["dup", "crlf", "cut", "space", "blank", "array", "bigint", "nested"]))
    if edit == "dup" and len(row) > 0:
        name = draw(st.sampled_from(sorted(row)))
        text = text[:-1] + (", " if row else "") + json.dumps(name) + ": 1}"
    elif edit == "crlf":
        text += "\r"
    elif edit == "cut":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif edit == "space":
        text = " " + text
    elif edit == "blank":
        text = draw(st.sampled_from(["", " ", "\t", "\r"]))
    elif edit == "array":
        text = "[" + text + "]"
    elif edit == "bigint":
        text = text[:-1] + (", " if row else "") + '"crf": 123456789012345678901}'
    elif edit == "nested":
        text = '{"outer": ' + text + "}"
    return text.encode("utf-8", "surrogatepass")


_POLICIES = st.builds(
    _params,
    non_finite=st.sampled_from(["keep", "null", "reject"]),
    on_invalid_row=st.sampled_from(["reject", "fail"]),
    jsonl=st.builds(
        JsonlOptions, crlf=st.sampled_from(["accept", "reject"]), max_line_bytes=st.sampled_from([60, 1 << 20])
    ),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=8), _POLICIES)
def test_a_block_comes_out_the_same_with_the_native_path(lines: list[bytes], params: MergeParams) -> None:
    _require_native()
    assert _outcome(params, lines, native=True) == _outcome(params, lines, native=False)


@settings(max_examples=1500, deadline=None)
@given(_lines(), _POLICIES)
def test_each_line_the_native_path_takes_is_the_python_paths_usable_row(raw: bytes, params: MergeParams) -> None:
    _require_native()
    prepass = native_prepass(params)
    assert prepass is not None
    answered, rows, lines, lengths, kept = prepass([raw])
    if answered == b"\x00":
        assert (rows, lines, lengths, kept) == ([], b"", b"", 0)
        return
    assert answered == b"\x01"
    assert len(lengths) == 4 and int.from_bytes(lengths, sys.byteorder) == len(lines)
    python = _outcome(params, [raw], native=False)
    assert isinstance(python, BlockResult)
    assert python.rows == rows
    assert python.lines == lines
    assert python.rejects == []
    assert python.tallies["non_finite_kept"] == kept


@pytest.mark.parametrize(
    "raw",
    [
        b'{"crf": 23.0, "encoder": "x264", "preset": 4.0, "src_sha256": "ab", "vmaf_score": 93}',
        b'{"crf": 23, "encoder": "x264", "preset": "fast", "src_sha256": "", "vmaf_score": NaN}',
        b'{"crf": 23, "encoder": null, "preset": 1e300, "src_sha256": "ab", "vmaf_score": -Infinity, "x": NaN}',
        b'{"crf": 23, "encoder": true, "preset": [1, 2], "src_sha256": 5, "vmaf_score": true}\r',
        b'{"crf": 23, "encoder": "x264", "preset": "fast", "src_sha256": "\\u6771\\u4eac", "vmaf_score": 1}',
        b'{"crf": NaN, "encoder": "x264", "preset": "fast", "src_sha256": "ab", "vmaf_score": 1}',
        b'{"crf": [23], "encoder": "x264", "preset": "fast", "src_sha256": "ab", "vmaf_score": 1}',
        b'{"crf": 1, "encoder": "x", "preset": "p", "src_sha256": "a", "vmaf_score": 1, "crf": 2}',
        b'{"crf": 1, "encoder": "x", "preset": "p", "src_sha256": "a\\"b", "vmaf_score": 1}',
        b'{"crf": 1, "encoder": "x", "preset": "p", "src_sha256": "a", "vmaf_score": 18446744073709551615}',
    ],
)
def test_edge_rows_come_out_the_same(raw: bytes) -> None:
    _require_native()
    for non_finite in ("keep", "null", "reject"):
        params = _params(non_finite=non_finite, on_invalid_row="reject")
        assert _outcome(params, [raw], native=True) == _outcome(params, [raw], native=False)


def test_real_shaped_rows_take_the_native_path() -> None:
    """vmaf-tune's rows (NaN in a third, escapes, lists, CRLF hosts) all take it, and give the Python path's block."""
    _require_native()
    rng = random.Random(7)
    params = MergeParams()
    prepass = native_prepass(params)
    assert prepass is not None
    lines = []
    for newline in ("\n", "\r\n"):
        for _, row in realshape.iter_real_encode_rows(rng, [("host.jsonl", 300)]):
            lines.append(realshape.dump_line(row, newline).encode().rstrip(b"\n"))
    assert any(b"NaN" in line for line in lines) and any(b"\\u" in line for line in lines)
    answered, rows, _, _, kept = prepass(lines)
    assert answered == b"\x01" * len(lines) and len(rows) == len(lines), "a real-shaped row left the native path"
    assert kept == sum(line.count(b"NaN") for line in lines)
    assert _outcome(params, lines, native=True) == _outcome(params, lines, native=False)


_DIGEST_POOL = [bytes([i]) * 16 for i in range(6)] + [bytes(16)]


@st.composite
def _kept_rows(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], bytes]:
    """A block's usable rows: repeated keys, a few cells, VMAF or None, a source or none."""
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_DIGEST_POOL),
                st.sampled_from([("x264", "fast"), ("x265", "4"), ("svt", "slow")]),
                st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64),
                st.sampled_from([b"", *_DIGEST_POOL]),
            ),
            max_size=30,
        )
    )
    lengths = array("I", draw(st.lists(st.integers(1, 3000), min_size=len(rows), max_size=len(rows))))
    return rows, lengths.tobytes()


@settings(max_examples=500, deadline=None)
@given(st.lists(_kept_rows(), min_size=1, max_size=4))
def test_keep_first_natively_keeps_tallies_and_writes_as_the_python_step(blocks: list[Any]) -> None:
    """The dedup step of ``keep: first`` (one native call a block): the same runs of lines to
    write, rows kept, cell tallies (float sums bit for bit), seen keys and unique sources."""
    if not NATIVE_KEEP_FIRST:
        pytest.skip("the native digest tables are not built here")
    states = []
    for step in (keep_first_block, keep_first_py):
        seen, sources = DigestSet(), DigestSet()
        cells: dict[tuple[str, str], list[Any]] = {}
        answers = [step(seen, sources, cells, list(rows), lengths) for rows, lengths in blocks]
        states.append(
            (
                answers,
                cells,
                len(seen),
                len(sources),
                [d in seen for d in _DIGEST_POOL],
                [d in sources for d in _DIGEST_POOL],
            )
        )
    assert states[0] == states[1]
    assert repr(states[0][1]) == repr(states[1][1])  # 0.0 and -0.0 told apart
