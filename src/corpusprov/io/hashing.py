"""Hashing exactly the bytes read: sha256 and md5 together, in a background thread."""

from __future__ import annotations

import hashlib
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["CHUNK_BYTES", "Digest", "FileHasher", "ThreadedHasher", "hash_file"]

#: Bytes read per chunk: large enough that hashing and splitting run at C speed.
CHUNK_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class Digest:
    """Size and hashes of a byte stream, as the manifest and DVC record them."""

    bytes: int
    """Number of bytes hashed."""
    sha256: str
    """Hex sha256 of the bytes."""
    md5: str
    """Hex md5 of the bytes: what DVC 3 writes in ``dvc.lock`` (``hash: md5``)."""


class FileHasher:
    """sha256 + md5 + byte count over bytes fed in order."""

    __slots__ = ("_md5", "_sha256", "size")

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5()  # noqa: S324 -- DVC's content id, not a security use
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes."""
        self._sha256.update(data)
        self._md5.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        """The digest of everything fed so far."""
        return Digest(self.size, self._sha256.hexdigest(), self._md5.hexdigest())


class ThreadedHasher:
    """A :class:`FileHasher` fed from a background thread.

    hashlib releases the GIL on large buffers, so sha256 + md5 of one chunk run on the
    other core while this thread splits and parses the previous one.
    """

    def __init__(self) -> None:
        self._hasher = FileHasher()
        self._queue: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="corpusprov-hash", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            self._hasher.update(chunk)

    def update(self, data: bytes) -> None:
        """Queue the next bytes (never empty)."""
        if data:
            self._queue.put(bytes(data))

    def update_owned(self, data: bytearray) -> None:
        """Queue ``data`` itself, which the caller hands over: it must never change it again."""
        if data:
            self._queue.put(data)

    def digest(self) -> Digest:
        """Wait for the queue to drain and return the digest."""
        self.close()
        return self._hasher.digest()

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()


def hash_file(path: Path) -> Digest:
    """Hash a whole file (the floor every stage is measured against)."""
    hasher = FileHasher()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.digest()
