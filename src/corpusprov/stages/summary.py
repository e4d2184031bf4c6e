"""Per-group statistics of the rows a stage wrote: metrics columns and pre-binned plot data."""

from __future__ import annotations

import bisect
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import compress
from pathlib import Path
from typing import Any, Final

from corpusprov.record.manifest import InputRecord
from corpusprov.record.upstream import chain_figures

__all__ = [
    "METRICS_GROUP",
    "NATIVE_GROUP_STATS",
    "AggregateSummary",
    "MergeSummary",
    "Running",
    "group_stats_py",
    "preset_text",
    "stage_metrics",
]

#: Unified MOS histogram: 5-point bins over 0-100, plus the (unclipped) slack either side.
UNIFIED_EDGES = tuple(float(edge) for edge in range(0, 101, 5))
#: Native histograms: this many bins over each corpus's native range.
NATIVE_BINS = 10


@dataclass
class Running:
    """Count, mean and standard deviation, one value at a time, in order (Welford)."""

    count: int = 0
    mean: float = 0.0
    _m2: float = 0.0

    def add_many(self, values: Iterable[float]) -> None:
        """Take values one at a time, in order (the figures depend on the order in the last bits)."""
        count, mean, m2 = self.count, self.mean, self._m2
        for value in values:
            count += 1
            delta = value - mean
            mean += delta / count
            m2 += delta * (value - mean)
        self.count, self.mean, self._m2 = count, mean, m2

    @property
    def std(self) -> float:
        """Population standard deviation (0 for fewer than two values)."""
        return math.sqrt(self._m2 / self.count) if self.count > 1 else 0.0


def _round(value: float) -> float:
    return round(value, 6)


def _bin_label(low: float, high: float) -> str:
    return f"{low:g}-{high:g}"


def _histogram(values: list[int], edges: tuple[float, ...]) -> list[tuple[str, int]]:
    """``values`` are counts for [below, bin0 .. binN-1, above]; labels follow the edges."""
    labels = [f"<{edges[0]:g}"]
    labels += [_bin_label(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
    labels.append(f">{edges[-1]:g}")
    return list(zip(labels, values, strict=True))


def _count_bins(bins: list[int], values: Sequence[float], edges: tuple[float, ...]) -> None:
    """Count ``values`` into ``bins``: 0 below the range, ``len(edges)`` above it, else 1 + the
    bin (each bin holds its lower edge; the top edge closes the last bin)."""
    for index, count in Counter(map(partial(bisect.bisect_right, edges), values)).items():
        bins[index] += count
    at_top = values.count(edges[-1])
    bins[len(edges)] -= at_top
    bins[len(edges) - 1] += at_top


@dataclass
class MergeSummary:
    """Rows and VMAF per encoder, rows per encoder x preset, of the rows written."""

    rows_by_encoder: dict[str, int] = field(default_factory=dict)
    by_cell: dict[tuple[str, str], int] = field(default_factory=dict)
    vmaf_mean: dict[str, float | None] = field(default_factory=dict)
    _cells: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def tallies(self) -> dict[tuple[str, str], list[Any]]:
        """``[rows, rows with a VMAF, VMAF total]`` per cell, as :meth:`add_cell` keeps them (the
        native ``keep_first_block`` adds to them the same way)."""
        return self._cells

    def add_cell(self, cell: tuple[str, str], vmaf: float | None) -> None:
        """Count one written row: ``(encoder, preset text)`` and a finite VMAF or ``None``."""
        self.add_tally(self._cells, cell, vmaf)

    @staticmethod
    def add_tally(cells: dict[tuple[str, str], list[Any]], cell: tuple[str, str], vmaf: float | None) -> None:
        """:meth:`add_cell` on a tallies dict (:meth:`tallies`)."""
        stats = cells.get(cell)
        if stats is None:
            stats = cells[cell] = [0, 0, 0.0]
        stats[0] += 1
        if vmaf is not None:
            stats[1] += 1
            stats[2] += vmaf

    def _fold(self) -> None:
        """Fold the per-cell tallies into the per-encoder views."""
        self.rows_by_encoder.clear()
        self.by_cell.clear()
        vmaf: dict[str, list[float]] = {}
        for (encoder, preset), (rows, count, total) in self._cells.items():
            self.rows_by_encoder[encoder] = self.rows_by_encoder.get(encoder, 0) + rows
            self.by_cell[(encoder, preset)] = rows
            sums = vmaf.setdefault(encoder, [0.0, 0.0])
            sums[0] += count
            sums[1] += total
        self.vmaf_mean = {encoder: (total / count if count else None) for encoder, (count, total) in vmaf.items()}

    def metrics(self) -> dict[str, Any]:
        """``encoder.<name>.rows`` and ``encoder.<name>.vmaf_mean``."""
        self._fold()
        result: dict[str, Any] = {}
        for encoder in sorted(self.rows_by_encoder):
            mean = self.vmaf_mean.get(encoder)
            result[encoder] = {
                "rows": self.rows_by_encoder[encoder],
                "vmaf_mean": _round(mean) if mean is not None else None,
            }
        return {"encoder": result}

    def vmaf_overall(self) -> float | None:
        """Mean VMAF of every written row with a finite score (the merge's headline quality)."""
        count = sum(stats[1] for stats in self._cells.values())
        total = sum(stats[2] for stats in self._cells.values())
        return _round(total / count) if count else None

    def plots(self) -> dict[str, list[dict[str, Any]]]:
        """Rows per encoder x preset, ready for the bar template."""
        self._fold()
        points = []
        cells = sorted(self.by_cell.items(), key=lambda item: (item[0][0], _preset_order(item[0][1])))
        for (encoder, preset), rows in cells:
            points.append({"group": encoder, "bin": preset, "order": _preset_order(preset), "rows": rows})
        return {"rows_by_encoder_preset": points}


def preset_text(preset: Any) -> str:
    if type(preset) is float and preset.is_integer():
        return str(int(preset))
    return str(preset)


_SPEED = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def _preset_order(preset: str) -> float:
    """Numeric presets by number, x264/x265 names fastest to slowest, others after."""
    try:
        return float(preset)
    except ValueError:
        return 1000.0 + (_SPEED.index(preset) if preset in _SPEED else len(_SPEED))


def group_stats_py(
    values: array[float], groups: array[int], group: int, count: int, mean: float, m2: float, edges: Sequence[float]
) -> tuple[int, int, float, float, list[int]]:
    """``values`` whose entry in ``groups`` is ``group``, in order, fed to a :class:`Running` state
    ``(count, mean, m2)`` and counted into bins over ``edges`` (see :func:`_count_bins`):
    ``(values selected, count, mean, m2, bins)``. The native twin is ``_aggregate.group_stats``."""
    chosen = array("d", compress(values, [held == group for held in groups]))
    running = Running(count, mean, m2)
    running.add_many(chosen)
    bins = [0] * (len(edges) + 1)
    _count_bins(bins, chosen, tuple(edges))
    return len(chosen), running.count, running.mean, running._m2, bins


try:
    from corpusprov._aggregate import group_stats as _group_stats

    #: True when the per-corpus statistics run natively (``_aggregate.group_stats``).
    NATIVE_GROUP_STATS: Final = True
except ImportError:  # pragma: no cover - an install without a C compiler
    _group_stats = group_stats_py
    NATIVE_GROUP_STATS: Final = False  # type: ignore[misc]


@dataclass
class AggregateSummary:
    """Unified and native MOS per corpus, of the rows written."""

    native_ranges: dict[str, tuple[float, float]]
    unified: dict[str, Running] = field(default_factory=dict)
    native: dict[str, Running] = field(default_factory=dict)
    unified_bins: dict[str, list[int]] = field(default_factory=dict)
    native_bins: dict[str, list[int]] = field(default_factory=dict)
    _state: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def _corpus_state(self, corpus: str) -> tuple[Any, ...]:
        state = self._state.get(corpus)
        if state is None:
            edges = self._native_edges(corpus)
            state = self._state[corpus] = (
                self.unified.setdefault(corpus, Running()),
                self.native.setdefault(corpus, Running()),
                self.unified_bins.setdefault(corpus, [0] * (len(UNIFIED_EDGES) + 1)),
                self.native_bins.setdefault(corpus, [0] * (len(edges) + 1)),
                edges,
            )
        return state

    def add_group(
        self, corpus: str, unified: array[float], native: array[float], groups: array[int], group: int
    ) -> int:
        """Count the written rows of one corpus: the scores whose entry in ``groups`` is ``group``,
        in slot order (:func:`group_stats_py`'s arithmetic, in one native pass where built);
        returns how many there were."""
        unified_stats, native_stats, unified_bins, native_bins, edges = self._corpus_state(corpus)
        rows = 0
        for stats, values, bins, bounds in (
            (unified_stats, unified, unified_bins, UNIFIED_EDGES),
            (native_stats, native, native_bins, edges),
        ):
            rows, stats.count, stats.mean, stats._m2, counted = _group_stats(
                values, groups, group, stats.count, stats.mean, stats._m2, bounds
            )
            for index, number in enumerate(counted):
                bins[index] += number
        return rows

    def _native_edges(self, corpus: str) -> tuple[float, ...]:
        low, high = self.native_ranges[corpus]
        step = (high - low) / NATIVE_BINS
        return (*(low + step * index for index in range(NATIVE_BINS)), high)

    def mos_overall(self) -> float | None:
        """Mean unified MOS of every written row (the aggregate's headline quality)."""
        count = sum(stats.count for stats in self.unified.values())
        total = sum(stats.mean * stats.count for stats in self.unified.values())
        return _round(total / count) if count else None

    def metrics(self) -> dict[str, Any]:
        """``corpus.<label>.rows``, ``.mos_mean``, ``.mos_std``, ``.mos_native_mean``."""
        result = {}
        for corpus in sorted(self.unified):
            stats = self.unified[corpus]
            result[corpus] = {
                "rows": stats.count,
                "mos_mean": _round(stats.mean),
                "mos_std": _round(stats.std),
                "mos_native_mean": _round(self.native[corpus].mean),
            }
        return {"corpus": result}

    def plots(self) -> dict[str, list[dict[str, Any]]]:
        """Pre-binned histograms: unified 0-100 and native, per corpus."""
        unified_points = []
        native_points = []
        for corpus in sorted(self.unified):
            for order, (label, rows) in enumerate(_histogram(self.unified_bins[corpus], UNIFIED_EDGES)):
                if rows or 0 < order < len(UNIFIED_EDGES):
                    unified_points.append({"group": corpus, "bin": label, "order": order, "rows": rows})
            edges = self._native_edges(corpus)
            for order, (label, rows) in enumerate(_histogram(self.native_bins[corpus], edges)):
                if rows or 0 < order < len(edges):
                    native_points.append({"group": corpus, "bin": label, "order": order, "rows": rows})
        return {"mos_unified_hist": unified_points, "mos_native_hist": native_points}


#: The metrics file's top key per stage: `dvc exp show` columns read ``grid.out``, ``mos.mean``.
METRICS_GROUP: Final = {"merge": "grid", "aggregate": "mos"}


def stage_metrics(
    kind: str,
    counters: dict[str, int],
    accounting: dict[str, Any],
    headline: dict[str, Any],
    records: Sequence[InputRecord],
) -> dict[str, Any]:
    """The few figures a person compares between builds, under a short name per stage.

    Nested (``grid.out``, ``mos.out``) so names never collide between the two files and DVC
    needs no file prefix, and short so the columns that changed fit a 120-column terminal;
    every counter stays in the manifest, the breakdowns in its ``breakdown`` section.
    ``in``, ``dups`` and ``rejected`` count the whole chain behind the file (the demo's per-host
    merges and the global one), so they read as one build's; the manifest keeps each level's own.
    """
    document = {
        "kind": kind,
        "counters": counters,
        "accounting": accounting,
        "inputs": [record.to_dict() for record in records],
    }
    chain = chain_figures(document, Path.cwd())
    if chain is None:  # a stage always counts every name its accounting lists
        raise ValueError(f"{kind}: counters do not carry the accounting's names")
    figures: dict[str, Any] = {"in": chain["in"], "out": counters["rows_out"]}
    figures |= {"dups": chain["dups"], "rejected": chain["rejected"]}
    figures.update(headline)
    return {METRICS_GROUP[kind]: figures}
