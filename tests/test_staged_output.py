"""Staged outputs write and hash in background threads: the bytes, their order and errors."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.errors import OutputError
from corpusprov.io import fsutil
from corpusprov.io.fsutil import BackgroundWriter
from corpusprov.io.outputs import FLUSH_BYTES, StagedFile

# Pieces up to a third of a flush, so a run crosses the flush size many times.
_pieces = st.lists(
    st.tuples(st.integers(0, 255), st.integers(1, FLUSH_BYTES // 3)),
    min_size=1,
    max_size=24,
)


@settings(max_examples=25, deadline=None)
@given(pieces=_pieces)
def test_staged_file_holds_every_write_in_order_and_hashes_those_bytes(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[tuple[int, int]]
) -> None:
    folder = tmp_path_factory.mktemp("staged")
    target = folder / "out.jsonl"
    staged = StagedFile(target, "out.jsonl", "corpus")
    staged.open()
    expected = bytearray()
    for index, (byte, size) in enumerate(pieces):
        # Distinct content a piece, so a reordered or dropped write changes the bytes.
        piece = bytes([byte]) * (size - 1) + bytes([index % 251]) + b"\n"
        staged.write_lines(piece, 1)
        expected += piece
    digest = staged.finish()
    written = staged.temp.read_bytes()
    assert written == bytes(expected)
    assert digest.bytes == len(expected)
    assert digest.sha256 == hashlib.sha256(expected).hexdigest()
    assert digest.md5 == hashlib.md5(expected).hexdigest()  # noqa: S324 -- DVC's content id
    assert staged.rows == len(pieces)


def test_a_failed_background_write_is_raised_and_later_buffers_are_dropped() -> None:
    with open("/dev/full", "wb", buffering=0) as handle:
        writer = BackgroundWriter(handle)
        writer.put(b"x" * 4096)
        with pytest.raises(OSError, match="No space left") as caught:
            writer.close()
        assert caught.value.errno == errno.ENOSPC
        # Closing again, or a put after the error, raises the same error rather than hanging.
        with pytest.raises(OSError, match="No space left"):
            writer.close()
        with pytest.raises(OSError, match="No space left"):
            writer.put(b"y")


def test_a_write_error_reaches_the_stage_as_an_output_error_naming_the_file(tmp_path: Path) -> None:
    staged = StagedFile(tmp_path / "out.jsonl", "out/out.jsonl", "corpus")
    staged.open()
    # Swap the temp file's handle for one whose writes fail, as a full disk's would.
    real = staged._handle
    assert real is not None
    real.close()
    staged._handle = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 -- closed by abort
    # Past the flush size: handed to the writer thread, whose error the finish raises.
    staged.write_lines(b"a" * (FLUSH_BYTES + 1) + b"\n", 1)
    with pytest.raises(OutputError) as caught:
        staged.finish()
    assert "out/out.jsonl" in str(caught.value.path)
    assert "No space left" in str(caught.value)
    staged.abort()
    assert not staged.temp.exists()


def test_writeback_as_the_file_grows_keeps_every_byte_and_ignores_files_it_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writeback started after every buffer: the bytes on disk are still all there, in order.
    monkeypatch.setattr(fsutil, "WRITEBACK_BYTES", 1)
    pieces = [bytes([index]) * (64 * 1024) for index in range(40)]
    path = tmp_path / "grown.bin"
    with open(path, "wb") as handle:
        writer = BackgroundWriter(handle)
        for piece in pieces:
            writer.put(piece)
        writer.close()
    assert path.read_bytes() == b"".join(pieces)
    # A device where sync_file_range fails (ESPIPE/EINVAL) is written as any other file.
    with open("/dev/null", "wb") as handle:
        writer = BackgroundWriter(handle)
        for piece in pieces:
            writer.put(piece)
        writer.close()
        assert writer.error is None
    fsutil.start_writeback(-1, 0, 1)  # a bad descriptor is ignored too: the fsync decides
