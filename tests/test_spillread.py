"""Aggregate's spill read back in sorted order: the native sort and gather agree with their Python twins."""

from __future__ import annotations

import os
import tempfile
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.stages.spill import NATIVE_GATHER, NATIVE_SORT, gather_py, sorted_ordinals_py
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


def _outcome(gather: Any, fd: int, offsets: Any, lengths: Any, picks: array[int], max_bytes: int) -> Any:
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
    order=st.lists(st.integers(min_value=-2, max_value=40), max_size=40),
    max_bytes=st.integers(min_value=0, max_value=120),
    truncate=st.integers(min_value=0, max_value=3),
)
def test_native_gather_agrees_with_the_python_one(
    lines: list[bytes], order: list[int], max_bytes: int, truncate: int
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
    # Picks may repeat, skip lines, point before the start or past the end (an IndexError) or
    # at bytes the file no longer holds (truncated: an OSError).
    picks = array("q", order)
    with tempfile.TemporaryFile() as handle:
        handle.write(blob[: max(0, len(blob) - truncate)])
        handle.flush()
        fd = handle.fileno()
        native = _outcome(gather, fd, offsets, lengths, picks, max_bytes)
        python = _outcome(gather_py, fd, offsets, lengths, picks, max_bytes)
    assert native == python
    if truncate == 0 and all(0 <= ordinal < len(lines) for ordinal in order):
        assert isinstance(native, list)
        assert b"".join(data for data, _ in native) == b"".join(lines[ordinal] for ordinal in order)


@pytest.mark.parametrize("gather", ["native", "python"])
def test_gather_refuses_picks_out_of_range(gather: str, tmp_path: Any) -> None:
    read = _native() if gather == "native" else gather_py
    path = tmp_path / "spill"
    path.write_bytes(b"abc\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        for bad in (-1, 1, 2**40):
            with pytest.raises(IndexError):
                read(fd, array("q", [0]), array("I", [4]), array("q", [bad]), 0, 1 << 20)
        data, stop = read(fd, array("q", [0]), array("I", [4]), array("q", [0, 0]), 0, 1 << 20)
        assert (data, stop) == (b"abc\nabc\n", 2)
    finally:
        os.close(fd)


def test_the_native_gather_takes_an_array_of_ordinals(tmp_path: Any) -> None:
    read = _native()
    path = tmp_path / "spill"
    path.write_bytes(b"abc\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        for picks in ([0], array("i", [0]), b"\x00" * 8):
            with pytest.raises(TypeError):
                read(fd, array("q", [0]), array("I", [4]), picks, 0, 1 << 20)
    finally:
        os.close(fd)


def _sorter() -> Any:
    if not NATIVE_SORT:
        pytest.skip("the native sort is not built here")
    from corpusprov._aggregate import sorted_ordinals

    return sorted_ordinals


# Keys that share prefixes, hold NUL bytes (a key that is a prefix of another, followed by
# b"\0", compares through the ordinal's bytes), run past eight bytes and repeat.
_KEY = st.binary(max_size=3) | st.lists(
    st.sampled_from([b"\x00", b"\x01", b"a", b"\xff", b"konvid-150k\x00"]), max_size=5
).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(
    keys=st.lists(_KEY, max_size=60),
    ordinals=st.lists(st.integers(min_value=0, max_value=2**63 - 1) | st.integers(0, 300), unique=True, max_size=60),
)
def test_native_sort_agrees_with_the_python_one(keys: list[bytes], ordinals: list[int]) -> None:
    sorted_ordinals = _sorter()
    count = min(len(keys), len(ordinals))
    picks = array("q", ordinals[:count])
    native = sorted_ordinals(keys[:count], picks)
    assert native == sorted_ordinals_py(keys[:count], picks)
    order = array("q")
    order.frombytes(native)
    assert sorted(order) == sorted(picks)


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.binary(min_size=14, max_size=40),
    tails=st.lists(st.binary(max_size=3), min_size=30, max_size=300),
    seed=st.integers(0, 2**32),
)
def test_native_sort_agrees_on_long_runs_of_a_shared_prefix(prefix: bytes, tails: list[bytes], seed: int) -> None:
    """Past sixteen shared bytes (a long corpus label) the radix pass ties everything: the
    merge sort behind it orders the run, here hundreds of keys, many equal."""
    sorted_ordinals = _sorter()
    import random

    keys = [prefix + tail for tail in tails]
    picks = array("q", random.Random(seed).sample(range(10 * len(keys)), len(keys)))
    assert sorted_ordinals(keys, picks) == sorted_ordinals_py(keys, picks)


def test_the_native_sort_refuses_what_it_cannot_sort() -> None:
    sorted_ordinals = _sorter()
    with pytest.raises(ValueError, match="differ in length"):
        sorted_ordinals([b"a"], array("q", [0, 1]))
    with pytest.raises(TypeError):
        sorted_ordinals([b"a", "b"], array("q", [0, 1]))
    with pytest.raises(TypeError):
        sorted_ordinals([b"a"], array("q", [-1]))
    with pytest.raises(TypeError):
        sorted_ordinals((b"a",), array("q", [0]))
    assert sorted_ordinals([], array("q")) == b""
