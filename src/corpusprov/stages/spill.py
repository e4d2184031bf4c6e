"""Aggregate's spill: the unified lines of every usable row in input order, in a temp file next
to the output, and the winners read back from it in output order.

Per unique key the resolver keeps only what the rule needs; the lines themselves wait here,
so memory never grows with row width. :func:`sorted_ordinals_py` gives the output order and
:func:`gather_py` reads a batch of it back; each has a native twin (``_aggregate.sorted_ordinals``,
``_spillread.gather``) the stage uses where the install built it.
"""

from __future__ import annotations

import contextlib
import os
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from corpusprov.errors import OutputError
from corpusprov.io.fsutil import TEMP_PREFIX

__all__ = ["NATIVE_GATHER", "NATIVE_SORT", "Spill", "gather_py", "sorted_ordinals", "sorted_ordinals_py"]

#: About this much of the output is read from the spill at a time.
_READ_BATCH_BYTES: Final = 1 << 20

_WRITE_FAILED: Final = "cannot write the spill file next to the output"


class Spill:
    """A temp file of unified lines in input order, read back in sorted order."""

    def __init__(self, near: Path, display: str) -> None:
        self.path = near.with_name(f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-spill-{near.name}")
        self.display = display
        self.offset = 0
        try:
            self._handle = open(self.path, "xb+")  # noqa: SIM115 -- closed in close()
        except OSError as exc:
            raise self._error("cannot create the spill file", exc, "check that the output folder is writable") from exc

    def write(self, lines: bytes) -> int:
        """Append ``lines``; return the offset they start at."""
        start = self.offset
        try:
            self._handle.write(lines)
        except OSError as exc:
            raise self._error(
                _WRITE_FAILED, exc, "check free space and file size limits (ulimit -f); nothing was written"
            ) from exc
        self.offset += len(lines)
        return start

    def lines_in_order(
        self, offsets: array[int], lengths: array[int], picks: array[int]
    ) -> Iterator[tuple[bytes, int]]:
        """The lines ``picks`` name, in batches of (lines, count); see :func:`gather_py`."""
        self.flush()
        start = 0
        while start < len(picks):
            try:
                data, stop = _gather(self._handle.fileno(), offsets, lengths, picks, start, _READ_BATCH_BYTES)
            except OSError as exc:
                raise self._error(
                    "cannot read the spill file back", exc, "check the disk next to the output; nothing was written"
                ) from exc
            yield data, stop - start
            start = stop

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as exc:
            raise self._error(_WRITE_FAILED, exc, "check free space and file size limits") from exc

    def _error(self, what: str, exc: OSError, fix: str) -> OutputError:
        return OutputError(f"{what}: {exc.strerror or exc}", path=self.display, fix=fix)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def gather_py(
    fd: int, offsets: array[int], lengths: array[int], picks: array[int], start: int, max_bytes: int
) -> tuple[bytes, int]:
    """``picks[start:stop]``'s lines joined, and ``stop``: lines are taken until they reach ``max_bytes``.

    ``picks`` holds line ordinals in output order (:func:`sorted_ordinals_py`); line ``i`` is
    ``lengths[i]`` bytes of the spill at ``offsets[i]``. One line at least while picks remain.
    The native twin is ``_spillread.gather``, which reads a batch with the GIL released (a
    pread per line here drops and retakes it every time).
    """
    chosen: list[int] = []  # the batch, checked before anything is read
    total = 0
    stop = start
    while stop < len(picks) and (stop == start or total < max_bytes):
        pick = picks[stop]
        if pick < 0 or pick >= len(offsets) or offsets[pick] < 0:
            raise IndexError("pick out of range")
        chosen.append(pick)
        total += lengths[pick]
        stop += 1
    parts = [os.pread(fd, lengths[pick], offsets[pick]) for pick in chosen]
    if any(len(part) != lengths[pick] for part, pick in zip(parts, chosen, strict=True)):
        raise OSError("the spill file ended before a line it holds")
    return b"".join(parts), stop


def sorted_ordinals_py(sort_keys: list[bytes], ordinals: array[int]) -> bytes:
    """The winners' ordinals in output order, as int64 bytes (``array("q").frombytes``): sorted
    as the entries ``sort_key + b"\\0" + ordinal.to_bytes(8, "big")`` sort as bytes (the key
    first, the earlier row on a tie). The native twin is ``_aggregate.sorted_ordinals``.
    """
    entries = [key + b"\x00" + ordinal.to_bytes(8, "big") for key, ordinal in zip(sort_keys, ordinals, strict=True)]
    entries.sort()
    return array("q", [int.from_bytes(entry[-8:], "big") for entry in entries]).tobytes()


try:
    from corpusprov._aggregate import sorted_ordinals

    #: True when the winners are sorted by the native ``_aggregate.sorted_ordinals``.
    NATIVE_SORT: Final = True
except ImportError:  # pragma: no cover - an install without a C compiler
    sorted_ordinals = sorted_ordinals_py
    NATIVE_SORT: Final = False  # type: ignore[misc]

try:
    from corpusprov._spillread import gather as _gather

    #: True when the spill is read back by the native ``_spillread.gather``.
    NATIVE_GATHER: Final = True
except ImportError:  # pragma: no cover - an install without a C compiler
    _gather = gather_py
    NATIVE_GATHER: Final = False  # type: ignore[misc]
