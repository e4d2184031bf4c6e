"""The native aggregate fast path (``_bytescan.aggregate_rows``) answers exactly as the Python path, or not at all.

For every line it takes, a block's result (unified line, row tuple, counters) is the Python
path's, bit for bit (the unified score is ``slope * x + intercept`` in both); every other line
goes the Python way. Real-shaped MOS rows take it.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.io.jsonl import Block, JsonlOptions
from corpusprov.params.scales import ScaleEntry
from corpusprov.params.stages import AggregateParams
from corpusprov.stages.aggregate import NATIVE_AGGREGATE_ROWS, aggregate_block_function, native_prepass
from corpusprov.stages.rowpolicy import BlockResult
from tests.conftest import HAVE_C_COMPILER

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import realshape

_SCALES = {
    "konvid": ScaleEntry("konvid", 1.0, 5.0, True, "1-5 ACR"),
    "lsvq": ScaleEntry("lsvq", 0.0, 100.0, True, "0-100"),
    "dmos": ScaleEntry("dmos", 0.0, 100.0, False, "0-100 DMOS"),
    "odd": ScaleEntry("odd", -3.0, 7.5, True, "odd"),
}
_DISPLAY = "mos/konvid.jsonl"


def _params(**changes: Any) -> AggregateParams:
    return AggregateParams(scales=_SCALES, **changes)


def _outcome(params: AggregateParams, lines: list[bytes], *, native: bool, override: str | None = None) -> Any:
    """The block's result as the stage sees it, or the error it raises (type and message)."""
    overrides = {_DISPLAY: override} if override is not None else {}
    function = aggregate_block_function(params, overrides, native=native)
    try:
        return function(Block(_DISPLAY, 1, lines, False))
    except Exception as problem:
        return ("error", type(problem).__name__, str(problem))


def _require_native() -> None:
    if not NATIVE_AGGREGATE_ROWS:
        pytest.skip("the native aggregate fast path is not built here")


def test_the_native_aggregate_fast_path_was_built() -> None:
    """`pip install` builds it wherever there is a C compiler (CI has one)."""
    if not HAVE_C_COMPILER:
        pytest.skip("no C compiler here: the Python path is in use")
    assert NATIVE_AGGREGATE_ROWS


_NUMBERS = (
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=110)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-5, 105)
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([1.0, 5.0, 5.05, 5.06, 0.95, 100.0, 1e300, -0.0, 2**53 + 1, 3])
)
_ODD = st.sampled_from(["", "3.5", "n/a", True, None, [1], {"a": 1}, "東京", 'q"uote', "back\\slash"])
_VALUE = _NUMBERS | st.text(max_size=5) | _ODD
_FIELDS = {
    "src": st.sampled_from(["a.mp4", "b.mp4", "/東京/c.mp4", ""]) | _VALUE,
    "src_sha256": st.sampled_from(["aa", "bb", ""]) | _VALUE,
    "mos": _NUMBERS | _ODD,
    "corpus": st.sampled_from(["konvid", "lsvq", "dmos", "odd", "unknown", ""]) | _ODD,
}
_OPTIONAL = {
    "corpus_source": st.sampled_from(["lsvq", "konvid", "", "nope"]) | _ODD,
    "mos_std_dev": _NUMBERS | _ODD,
    "width": st.sampled_from([1920, 1920.0, 1e19, 7.5]) | _VALUE,
    "height": _VALUE,
    "framerate": st.sampled_from([29.97002997002997, 30, float("nan")]) | _VALUE,
    "duration_s": _NUMBERS,
    "pix_fmt": st.sampled_from(["yuv420p"]) | _VALUE,
    "n_ratings": st.integers(0, 200) | _VALUE,
    "corpus_version": st.sampled_from(["2024.1"]) | _VALUE,
    "ingested_at_utc": st.sampled_from(["2026-09-22T12:00:00Z"]) | _VALUE,
    "encoder_upstream": _VALUE,
    "src_size_bytes": st.integers(0, 10**9),
    "x_pad": st.text(max_size=4),
}


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    """A MOS row as an ingest writes it, often plain, sometimes broken on purpose."""
    plain = draw(st.booleans())
    if plain:
        row: dict[str, Any] = {
            "src": draw(st.sampled_from(["a.mp4", "b.mp4", "/東京/c.mp4", ""])),
            "src_sha256": draw(st.sampled_from(["aa", "bb", "cc", ""])),
            "mos": draw(st.floats(0, 100) | st.integers(1, 5)),
            "corpus": draw(st.sampled_from(["konvid", "lsvq", "dmos", "odd"])),
            "mos_std_dev": draw(st.floats(0, 2) | st.just(float("nan")) | st.none()),
            "width": 1920,
            "framerate": draw(st.sampled_from([29.97002997002997, float("nan"), float("inf")])),
        }
    else:
        row = draw(st.fixed_dictionaries(_FIELDS, optional=_OPTIONAL))
        if draw(st.integers(0, 9)) == 0 and row:
            del row[draw(st.sampled_from(sorted(row)))]
    separators = draw(st.sampled_from([(", ", ": "), (", ", ": "), (",", ":"), (" , ", " : ")]))
    text = json.dumps(row, sort_keys=draw(st.booleans()), separators=separators, ensure_ascii=draw(st.booleans()))
    edit = draw(st.sampled_from(["none"] * 6 + ["dup", "crlf", "cut", "blank", "nested", "bigint"]))
    if edit == "dup" and row:
        text = text[:-1] + ", " + json.dumps(draw(st.sampled_from(sorted(row)))) + ": 1}"
    elif edit == "crlf":
        text += "\r"
    elif edit == "cut":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif edit == "blank":
        text = draw(st.sampled_from(["", " ", "\r"]))
    elif edit == "nested":
        text = text[:-1] + ', "extra": {"a": NaN}}'
    elif edit == "bigint":
        text = text[:-1] + ', "n_ratings": 123456789012345678901}'
    return text.encode("utf-8", "surrogatepass")


_POLICIES = st.builds(
    _params,
    non_finite=st.sampled_from(["keep", "null", "reject"]),
    on_invalid_row=st.sampled_from(["reject", "fail"]),
    range_slack=st.sampled_from([0.05, 0.0, 0.5, 2]),
    std_dev_units=st.sampled_from(["native", "unified"]),
    dedup_key=st.sampled_from([("src_sha256",), ("src", "src_sha256"), ("corpus_version",)]),
    jsonl=st.builds(
        JsonlOptions, crlf=st.sampled_from(["accept", "reject"]), max_line_bytes=st.sampled_from([90, 1 << 20])
    ),
)
_OVERRIDES = st.sampled_from([None, None, "lsvq", "dmos", "unknown"])


@settings(max_examples=1500, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=8), _POLICIES, _OVERRIDES)
def test_a_block_comes_out_the_same_with_the_native_path(
    lines: list[bytes], params: AggregateParams, override: str | None
) -> None:
    _require_native()
    native = _outcome(params, lines, native=True, override=override)
    assert native == _outcome(params, lines, native=False, override=override)


@settings(max_examples=1500, deadline=None)
@given(_lines(), _POLICIES, _OVERRIDES)
def test_each_line_the_native_path_takes_is_the_python_paths_usable_row(
    raw: bytes, params: AggregateParams, override: str | None
) -> None:
    _require_native()
    prepass = native_prepass(params)
    assert prepass is not None
    answered, rows, lines, lengths, kept = prepass([raw], override)
    if answered == b"\x00":
        assert (rows, lines, lengths, kept) == ([], b"", b"", 0)
        return
    assert answered == b"\x01"
    assert len(lengths) == 4 and int.from_bytes(lengths, sys.byteorder) == len(lines)
    python = _outcome(params, [raw], native=False, override=override)
    assert isinstance(python, BlockResult)
    assert python.rows == rows
    assert python.lines == lines
    assert python.rejects == []
    assert python.tallies["non_finite_kept"] == kept
    assert python.tallies["numbers_from_strings"] == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"src": "a", "src_sha256": "aa", "mos": 3, "corpus": "konvid"}',
        b'{"src": "a", "src_sha256": "aa", "mos": 5.05, "corpus": "konvid", "mos_std_dev": NaN, "framerate": NaN}',
        b'{"src": "a", "src_sha256": "aa", "mos": 5.0, "corpus": "konvid", "mos_std_dev": NaN, "framerate": Infinity}',
        b'{"src": "a", "src_sha256": "", "mos": 50, "corpus": "dmos", "corpus_source": "", "width": 1920.0}',
        b'{"src": "a", "src_sha256": "aa", "mos": 50, "corpus": "x", "corpus_source": "lsvq", "height": 1e300}',
        b'{"src": "a", "src_sha256": "aa", "mos": "3.5", "corpus": "konvid"}',
        b'{"src": "a", "src_sha256": "aa", "mos": 3, "corpus": "konvid", "mos_std_dev": "0.5"}',
        b'{"src": "a", "src_sha256": "aa", "mos": 3, "corpus": "konvid", "mos_std_dev": 0, "n_ratings": 2.0}',
        b'{"src": [1], "src_sha256": 5, "mos": 3, "corpus": "konvid", "mos_std_dev": -1}',
        b'{"src": 2.0, "src_sha256": 5, "mos": 3, "corpus": "konvid", "pix_fmt": 4}',
        b'{"src": "a", "src_sha256": "aa", "mos": 9007199254740993, "corpus": "lsvq"}',
        b'{"src": "a", "src_sha256": "aa", "mos": -7.0, "corpus": "odd", "extra": 1}',
        # The one field the unified row drops sorts after all of its fields, or before them.
        b'{"src": "a", "src_sha256": "aa", "mos": 3, "corpus": "konvid", "zz_extra": 1}',
        b'{"Zsrc": "a", "src": "a", "src_sha256": "aa", "mos": 3, "corpus": "konvid"}',
    ],
)
def test_edge_rows_come_out_the_same(raw: bytes) -> None:
    _require_native()
    for non_finite in ("keep", "null", "reject"):
        for std_dev_units in ("native", "unified"):
            params = _params(non_finite=non_finite, on_invalid_row="reject", std_dev_units=std_dev_units)
            for override in (None, "lsvq"):
                native = _outcome(params, [raw], native=True, override=override)
                assert native == _outcome(params, [raw], native=False, override=override)


def test_real_shaped_rows_take_the_native_path() -> None:
    """Ingested MOS rows (NaN std-devs in a third, escapes) all take it, and give the Python path's block."""
    _require_native()
    scales = {
        label: ScaleEntry(label, float(low), float(high), True, f"{low:g}-{high:g}")
        for label, low, high, *_ in realshape.MOS_REAL_CORPORA
    }
    params = AggregateParams(scales=scales)
    rng = random.Random(3)
    plan = realshape.mos_shard_plan(600)
    lines = [
        realshape.dump_line(row, "\n").encode().rstrip(b"\n") for _, row in realshape.iter_real_mos_rows(rng, plan)
    ]
    assert any(b"NaN" in line for line in lines) and any(b"\\u" in line for line in lines)
    prepass = native_prepass(params)
    assert prepass is not None
    answered, rows, _, _, kept = prepass(lines, None)
    assert answered == b"\x01" * len(lines) and len(rows) == len(lines), "a real-shaped row left the native path"
    assert kept == sum(line.count(b"NaN") for line in lines)
    function = aggregate_block_function(params, {}, native=True)
    python = aggregate_block_function(params, {}, native=False)
    block = Block("mos/all.jsonl", 1, lines, False)
    assert function(block) == python(block)
