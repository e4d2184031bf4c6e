"""Progress for long runs: a live bar on a terminal, one summary line otherwise (CLI side only)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

__all__ = ["LONG_RUN_BYTES", "LONG_RUN_SECONDS", "Progress", "stage_progress"]

#: A run this long (or reading this much) reports a summary line even off a terminal.
LONG_RUN_SECONDS = 2.0
LONG_RUN_BYTES = 32 * 1024 * 1024


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class Progress:
    """Bytes done of total, rows/s and ETA on stderr, drawn by tqdm.

    Live only on a terminal and outside DVC (``dvc repro`` logs are files, not screens);
    otherwise a single summary line when the run ends.
    """

    def __init__(self, label: str, total_bytes: int, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.label = label
        self.total = max(total_bytes, 1)
        self.stream = stream or sys.stderr
        self.under_dvc = bool(os.environ.get("DVC_STAGE"))
        if live is None:
            live = self.stream.isatty() and not self.under_dvc
        self.live = live
        self.done = 0
        self.rows = 0
        self.started = time.monotonic()
        # delay: a run that ends within a second never draws a bar at all.
        self._bar = (
            tqdm(
                total=self.total,
                desc=label,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self.stream,
                disable=not live,
                delay=1.0,
                mininterval=0.2,
                leave=False,
                dynamic_ncols=True,
            )
            if live
            else None
        )

    def advance(self, nbytes: int, rows: int) -> None:
        """Count work done; tqdm redraws at most five times a second."""
        self.done += nbytes
        self.rows += rows
        if self._bar is not None:
            self._bar.update(nbytes)

    def finish(self) -> None:
        """End the bar, or print the one summary line (under DVC, or for a long run)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        long_run = elapsed >= LONG_RUN_SECONDS or self.done >= LONG_RUN_BYTES
        if not (self.live or self.under_dvc or long_run):
            return  # a quick run's result line on stdout says all there is to say
        if self._bar is not None:
            self._bar.close()
            self.stream.write("\r\x1b[K")  # the summary line takes the bar's place
        self.stream.write(
            f"{self.label}: read {_size(self.done)} in {elapsed:.1f} s "
            f"({_size(self.done / elapsed)}/s, {self.rows / elapsed:,.0f} rows/s)\n"
        )
        self.stream.flush()


def stage_progress(label: str) -> tuple[Callable[[int, int, int], None], Callable[[], None]]:
    """A progress reporter for the stage, and the function that ends it."""
    holder: dict[str, Progress] = {}

    def report(nbytes: int, rows: int, total: int) -> None:
        if "bar" not in holder:
            holder["bar"] = Progress(label, total)
        holder["bar"].advance(nbytes, rows)

    def finish() -> None:
        if "bar" in holder:
            holder["bar"].finish()

    return report, finish
