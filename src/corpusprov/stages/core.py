"""The stage core both stages share: the per-input read loop, the input outcome, reject writing, counter sums."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from corpusprov.errors import DataError
from corpusprov.io.hashing import Digest
from corpusprov.io.inputs import InputFile
from corpusprov.io.jsonl import JsonlOptions, JsonlReader
from corpusprov.io.outputs import StagedFile
from corpusprov.stages.rowpolicy import BlockResult
from corpusprov.stages.workers import ProgressCallback, WorkerPool, metered

__all__ = [
    "ROW_DIGEST",
    "InputOutcome",
    "StageInputs",
    "sum_counters",
    "zero_counters",
]

# A usable row's result crosses the process boundary as a plain tuple (about 8x cheaper to
# pickle than a NamedTuple); each stage names its positions (``merge.MergeRow``, the
# resolver's ``OFFERED_ROW`` for aggregate). The natural-key digest always comes first.
ROW_DIGEST: Final = 0
"""The natural-key digest (bytes)."""


@dataclass(frozen=True)
class InputOutcome:
    """What one shard contributed."""

    file: InputFile
    """The shard."""
    digest: Digest
    """Hash of the bytes read (and parsed)."""
    counters: dict[str, int]
    """Per-input counters; they add up like the totals."""


def zero_counters(names: Iterable[str]) -> dict[str, int]:
    """A counter dict with every name at zero (so every build reports the same keys)."""
    return dict.fromkeys(names, 0)


def sum_counters(per_input: Iterable[dict[str, int]], names: Iterable[str]) -> dict[str, int]:
    """Totals of per-input counters."""
    totals = zero_counters(names)
    for counters in per_input:
        for name, value in counters.items():
            totals[name] += value
    return totals


class StageInputs:
    """Read each input in order through the worker pool; count and write what is not a row.

    :meth:`rows` yields each usable row's result with its input's counters, numbered by
    :attr:`ordinal` (usable rows so far, over all inputs); blank lines, rows in and rejects are
    counted and every reject written as it comes. :meth:`owner` finds the input of an ordinal,
    so a stage can move a duplicate's count to the input that held the earlier row.
    """

    def __init__(
        self,
        files: Sequence[InputFile],
        options: JsonlOptions,
        counter_names: Sequence[str],
        rejects: StagedFile,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.files = files
        self.options = options
        self.counter_names = counter_names
        self.rejects = rejects
        self.progress = progress
        self.per_input: list[dict[str, int]] = []
        self.digests: list[Digest] = []
        self.starts: list[int] = []
        self.ordinal = 0

    def blocks(self, pool: WorkerPool) -> Iterator[tuple[dict[str, int], BlockResult]]:
        """``(counters of its input, block result)`` per block, in input order.

        The block's tallies are added to its input's counters and its rejects written before
        it is yielded; :attr:`ordinal` is the ordinal of the block's first usable row while the
        stage handles it, and moves past the block's rows after.
        """
        for file in self.files:
            counters = zero_counters(self.counter_names)
            self.per_input.append(counters)
            self.starts.append(self.ordinal)
            reader = JsonlReader(file.path, file.display, self.options)
            write_reject = self.rejects.write_line
            for result in pool.map(metered(reader.blocks(), self.progress)):
                for name, value in result.tallies.items():
                    counters[name] += value
                for line in result.rejects:
                    write_reject(line)
                start = self.ordinal
                yield counters, result
                self.ordinal = start + len(result.rows)
            counters["crlf_lines"] = reader.stats.crlf_lines
            self.digests.append(reader.digest)

    def rows(self, pool: WorkerPool) -> Iterator[tuple[dict[str, int], tuple[Any, ...]]]:
        """``(counters of its input, row)`` per usable row, in input order; :attr:`ordinal` numbers the row."""
        for counters, result in self.blocks(pool):
            for row in result.rows:
                yield counters, row
                self.ordinal += 1

    def blocks_again(self, pool: WorkerPool) -> Iterator[BlockResult]:
        """Read every input a second time (after :meth:`rows`): each block's result, in the same order.

        Counts and writes nothing; raises :class:`DataError` when an input's bytes differ from the first read.
        """
        for file, first_digest in zip(self.files, self.digests, strict=True):
            reader = JsonlReader(file.path, file.display, self.options)
            yield from pool.map(metered(reader.blocks(), self.progress))
            if reader.digest != first_digest:
                raise DataError(
                    "input changed while it was being merged",
                    path=file.display,
                    fix="re-run once nothing else writes to the shards",
                )

    def owner(self, ordinal: int) -> dict[str, int]:
        """The counters of the input that held usable row ``ordinal``."""
        return self.per_input[bisect.bisect_right(self.starts, ordinal) - 1]

    def add_by_input(self, counter: str, ordinals: Iterable[int]) -> None:
        """Add 1 to ``counter`` of the input holding each usable row in ``ordinals`` (after :meth:`rows`)."""
        ordered = sorted(ordinals)
        bounds = [bisect.bisect_left(ordered, start) for start in self.starts] + [len(ordered)]
        for counters, low, high in zip(self.per_input, bounds, bounds[1:], strict=False):
            counters[counter] += high - low

    def outcomes(self) -> tuple[InputOutcome, ...]:
        """One outcome per input, in input order (after :meth:`rows` is exhausted)."""
        return tuple(
            InputOutcome(file, digest, counters)
            for file, digest, counters in zip(self.files, self.digests, self.per_input, strict=True)
        )

    def totals(self) -> dict[str, int]:
        """The run's counters: the per-input ones summed."""
        return sum_counters(self.per_input, self.counter_names)
