"""Aggregate's spill read back in sorted order: the native gather agrees with its Python twin."""

from __future__ import annotations

import os
import tempfile
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.stages.aggregate import NATIVE_GATHER, gather_py
from tests.conftest import HAVE_C_COMPILER


def _native() -> Any:
    if not NATIVE_GATHER:
        pytest.skip("the native spill read is not built here")
    from corpusprov._spillread import gather

    return gather


def test_the_native_spill_read_was_built() -> None:
    """`pip install` builds corpusprov._spillread wherever there is a C compiler (CI has one)."""
    if not HAVE_C_COMPILER:
        pytest.skip("no C compiler here: the pure-Python read is in use")
    assert NATIVE_GATHER


def _entry(key: bytes, ordinal: int) -> bytes:
    return key + b"\x00" + ordinal.to_bytes(8, "big")


def _outcome(gather: Any, fd: int, offsets: Any, lengths: Any, picks: list[bytes], max_bytes: int) -> Any:
    """Every batch from the start until the picks run out, or the error type."""
    batches: list[tuple[bytes, int]] = []
    start = 0
    try:
        while start < len(picks):
            data, stop = gather(fd, offsets, lengths, picks, start, max_bytes)
            assert stop > start
            batches.append((data, stop))
            start = stop
    except (IndexError, TypeError, OSError) as problem:
        return type(problem).__name__, batches
    return batches


_LINES = st.lists(st.binary(min_size=0, max_size=40), min_size=0, max_size=30)


@settings(max_examples=400, deadline=None)
@given(
    lines=_LINES,
    order=st.lists(st.integers(min_value=0, max_value=40), max_size=40),
    keys=st.lists(st.binary(max_size=6), max_size=40),
    max_bytes=st.integers(min_value=0, max_value=120),
    truncate=st.integers(min_value=0, max_value=3),
)
def test_native_gather_agrees_with_the_python_one(
    lines: list[bytes], order: list[int], keys: list[bytes], max_bytes: int, truncate: int
) -> None:
    gather = _native()
    blob = b"".join(lines)
    offsets = array("q")
    lengths = array("I")
    at = 0
    for line in lines:
        offsets.append(at)
        lengths.append(len(line))
        at += len(line)
    # Picks may repeat, skip lines, point past the end (an IndexError) or at bytes the file no
    # longer holds (truncated: an OSError); each ends in its ordinal, as the sort entries do.
    picks = [_entry(keys[index % len(keys)] if keys else b"", ordinal) for index, ordinal in enumerate(order)]
    with tempfile.TemporaryFile() as handle:
        handle.write(blob[: max(0, len(blob) - truncate)])
        handle.flush()
        fd = handle.fileno()
        native = _outcome(gather, fd, offsets, lengths, picks, max_bytes)
        python = _outcome(gather_py, fd, offsets, lengths, picks, max_bytes)
    assert native == python
    if truncate == 0 and all(ordinal < len(lines) for ordinal in order):
        assert isinstance(native, list)
        assert b"".join(data for data, _ in native) == b"".join(lines[ordinal] for ordinal in order)


@pytest.mark.parametrize("gather", ["native", "python"])
def test_gather_refuses_what_is_no_sort_entry(gather: str, tmp_path: Any) -> None:
    read = _native() if gather == "native" else gather_py
    path = tmp_path / "spill"
    path.write_bytes(b"abc\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(TypeError):
            read(fd, array("q", [0]), array("I", [4]), [b"short"], 0, 1 << 20)
        data, stop = read(fd, array("q", [0]), array("I", [4]), [_entry(b"k", 0)], 0, 1 << 20)
        assert (data, stop) == (b"abc\n", 1)
    finally:
        os.close(fd)
