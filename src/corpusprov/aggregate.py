"""The aggregate core: MOS corpora onto one 0-100 axis, de-duplicated across corpora.

Each input is read once. Worker processes parse and judge the rows and serialise each
usable row's unified line; the main process resolves duplicates keeping, per unique key,
only what the resolver needs (winning row, its std-dev, corpus and sort key, the corpora
seen), and appends every unified line to a spill file next to the output. The winners are
then copied from the spill in sorted order. Memory grows with unique keys (plus 12 bytes
per usable row for the spill index), never with row width.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from corpusprov.errors import DataError, OutputError
from corpusprov.fsutil import TEMP_PREFIX
from corpusprov.inputs import InputFile
from corpusprov.jsonl import Block, Digest, JsonlReader, LineError, canonical_line
from corpusprov.keys import DigestTable, NonFiniteKeyError, key_digest
from corpusprov.merge import InputOutcome
from corpusprov.outputs import StagedFile
from corpusprov.pipeline import BlockFunction, ProgressCallback, WorkerPool, metered
from corpusprov.rowpolicy import (
    INVALID_ROW_REASONS,
    ROW,
    Verdict,
    apply_non_finite,
    check_line,
    judge_block,
    sum_counters,
    tally_lines,
    zero_counters,
)
from corpusprov.scales import AggregateParams
from corpusprov.summary import AggregateSummary

__all__ = ["AGGREGATE_ACCOUNTING", "AGGREGATE_COUNTERS", "AggregateOutcome", "aggregate"]

AGGREGATE_COUNTERS: Final = (
    "rows_in",
    "rows_out",
    "cross_corpus_duplicates",
    "same_corpus_duplicates",
    "rejected_unknown_corpus",
    "rejected_bad_scale",
    "rejected_non_finite_mos",
    "rejected_invalid_mos",
    "rejected_invalid_label",
    *(f"rejected_{reason}" for reason in INVALID_ROW_REASONS),
    "rejected_non_finite_key",
    "rejected_non_finite_value",
    "non_finite_kept",
    "non_finite_nulled",
    "blank_lines_skipped",
)

AGGREGATE_ACCOUNTING: Final = {
    "in": "rows_in",
    "out": ["rows_out"],
    "duplicates": ["cross_corpus_duplicates", "same_corpus_duplicates"],
    "rejected": [name for name in AGGREGATE_COUNTERS if name.startswith("rejected_")],
}

_FALLBACK_FIELDS: Final = ("\x00fallback", "src", "corpus_source")
_UNKNOWN_STD: Final = math.inf


@dataclass(frozen=True)
class AggregateOutcome:
    """The result of an aggregate run."""

    inputs: tuple[InputOutcome, ...]
    """One entry per shard, in input order."""
    counters: dict[str, int]
    """Totals."""
    rows_by_corpus: dict[str, int]
    """Rows written per corpus label (the conversions actually applied)."""
    overrides: dict[str, str]
    """Input path -> label override actually applied."""
    summary: AggregateSummary
    """Unified and native MOS statistics per corpus of the rows written."""


class _Judge:
    """Applies the aggregate policy to one parsed line."""

    def __init__(self, params: AggregateParams) -> None:
        self.params = params
        self.required = frozenset(params.required_keys)
        self.key_fields = params.dedup_key

    def judge(self, line_no: int, row: Any, special: bool, error: LineError | None,
              display: str, override: str | None) -> Verdict:
        verdict = Verdict()
        params = self.params
        if not check_line(verdict, line_no, row, special, error, display, required=self.required,
                          on_invalid_row=params.on_invalid_row, group="aggregate"):
            return verdict
        label = override if override is not None else row.get("corpus_source", row.get("corpus"))
        if label is not None and not isinstance(label, str):
            return self._invalid(verdict, "invalid_label", f"corpus label {label!r} is not a string",
                                 display, line_no, row, special,
                                 "write the corpus label as a string, or set an override in "
                                 "aggregate.overrides")
        scale = params.scales.get(label) if label is not None else None
        if scale is None:
            return verdict.reject("unknown_corpus",
                                  f"corpus label {label!r} has no entry in aggregate.scales", row,
                                  special=special)
        mos = row["mos"]
        if type(mos) is not int and type(mos) is not float:
            return self._invalid(verdict, "invalid_mos", f"mos {mos!r} is not a number", display,
                                 line_no, row, special, "write mos as a JSON number")
        if not math.isfinite(mos):
            shown = "NaN" if math.isnan(mos) else ("Infinity" if mos > 0 else "-Infinity")
            return verdict.reject("non_finite_mos", f"mos {shown} is not a finite number", row,
                                  special=True)
        if not scale.contains(mos, params.range_slack):
            return verdict.reject(
                "bad_scale",
                f"mos {mos!r} is outside {label}'s {scale.native_min:g}-{scale.native_max:g} "
                f"scale (slack {params.range_slack:g})", row, special=special)
        verdict.label = label
        verdict.unified = scale.to_unified(mos)
        try:
            if all(row.get(name) is not None for name in self.key_fields):
                verdict.digest = key_digest(row, self.key_fields)
            else:
                verdict.digest = key_digest(
                    {"\x00fallback": True, "src": row.get("src"), "corpus_source": label},
                    _FALLBACK_FIELDS)
        except NonFiniteKeyError as exc:
            return verdict.reject("non_finite_key", f"key field {exc.field_name!r} is not a finite "
                                  "number", row, special=True)
        std = row.get("mos_std_dev")
        known = (type(std) is float or type(std) is int) and math.isfinite(std) and std > 0
        if not known:
            verdict.std = _UNKNOWN_STD
        elif params.std_dev_units == "unified":
            # Std-devs of a 1-5 and a 0-100 corpus only compare on one axis.
            verdict.std = float(std) * 100.0 / scale.span()
        else:
            verdict.std = float(std)
        apply_non_finite(verdict, params.non_finite)
        return verdict

    def _invalid(self, verdict: Verdict, reason: str, message: str, display: str, line_no: int,
                 row: Any, special: bool, fix: str) -> Verdict:
        if self.params.on_invalid_row == "fail":
            raise DataError(message, path=display, line=line_no,
                            fix=f"{fix}; or set aggregate.on_invalid_row: reject")
        return verdict.reject(reason, message, row, special=special)


class _Resolver:
    """Per unique key: the winning row, its std-dev, corpus and sort key, and the corpora seen."""

    def __init__(self) -> None:
        self.table = DigestTable()
        self.winner = array("q")
        self.winner_std = array("d")
        self.winner_corpus = array("i")
        self.winner_unified = array("d")
        self.winner_native = array("d")
        self.winner_sort: list[bytes] = []
        self.corpora_seen: list[int] = []
        self.corpus_ids: dict[str, int] = {}

    def offer(self, digest: bytes, label: str, std: float, ordinal: int, sort_key: bytes,
              unified: float, native: float) -> tuple[str, int | None]:
        """Judge a usable row: ``("new"|"won"|"lost"|"same_corpus", displaced ordinal)``."""
        corpus = self.corpus_ids.setdefault(label, len(self.corpus_ids))
        bit = 1 << corpus
        slot = self.table.setdefault(digest, len(self.winner))
        if slot is None:
            self.winner.append(ordinal)
            self.winner_std.append(std)
            self.winner_corpus.append(corpus)
            self.winner_unified.append(unified)
            self.winner_native.append(native)
            self.winner_sort.append(sort_key)
            self.corpora_seen.append(bit)
            return "new", None
        if self.corpora_seen[slot] & bit:
            return "same_corpus", None
        self.corpora_seen[slot] |= bit
        if std < self.winner_std[slot]:
            displaced = self.winner[slot]
            self.winner[slot] = ordinal
            self.winner_std[slot] = std
            self.winner_corpus[slot] = corpus
            self.winner_unified[slot] = unified
            self.winner_native[slot] = native
            self.winner_sort[slot] = sort_key
            return "won", displaced
        return "lost", None

    def labels(self) -> list[str]:
        """Corpus label by id."""
        return sorted(self.corpus_ids, key=self.corpus_ids.__getitem__)


class _Spill:
    """A temp file of unified lines in input order, read back in sorted order."""

    def __init__(self, near: Path, display: str) -> None:
        self.path = near.with_name(f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-spill-{near.name}")
        self.display = display
        self.offset = 0
        try:
            self._handle = open(self.path, "xb+")  # noqa: SIM115 -- closed in close()
        except OSError as exc:
            raise OutputError(f"cannot create the spill file: {exc.strerror or exc}", path=display,
                              fix="check that the output folder is writable") from exc

    def write(self, line: bytes) -> tuple[int, int]:
        start = self.offset
        try:
            self._handle.write(line)
        except OSError as exc:
            raise OutputError(f"cannot write the spill file next to the output: {exc.strerror or exc}",
                              path=self.display,
                              fix="check free space and file size limits (ulimit -f); nothing was written") from exc
        self.offset += len(line)
        return start, len(line)

    def read(self, start: int, length: int) -> bytes:
        return os.pread(self._handle.fileno(), length, start)

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as exc:
            raise OutputError(f"cannot write the spill file next to the output: {exc.strerror or exc}",
                              path=self.display, fix="check free space and file size limits") from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _sort_text(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return canonical_line(value).rstrip(b"\n")


def aggregate_block_function(params: AggregateParams, overrides: dict[str, str]) -> BlockFunction:
    """The per-block work (runs in worker processes): parse, judge, build the unified line.

    A usable row's result is ``(ROW, digest, label, std, unified_line, sort_key, unified,
    native, non_finite_kept, non_finite_nulled)``; see :func:`~corpusprov.rowpolicy.judge_block`.
    """
    judge = _Judge(params)
    options = params.jsonl
    policy = params.non_finite

    def make_row(verdict: Verdict, kept: int, nulled: int) -> tuple[Any, ...]:
        label = verdict.label or ""
        unified = dict(verdict.row)
        native = unified["mos"]
        unified["mos_native"] = native
        unified["mos"] = verdict.unified
        unified["mos_native_scale"] = params.scales[label].label
        unified["corpus_source"] = label
        sort_key = b"\x00".join((label.encode(), _sort_text(unified.get("src_sha256")),
                                 _sort_text(unified.get("src"))))
        return (ROW, verdict.digest, label, verdict.std, canonical_line(unified, special=verdict.special),
                sort_key, verdict.unified, float(native), kept, nulled)

    def run(block: Block) -> list[tuple[Any, ...]]:
        override = overrides.get(block.display)

        def judge_line(line_no: int, row: Any, special: bool, error: LineError | None) -> Verdict:
            return judge.judge(line_no, row, special, error, block.display, override)

        return judge_block(block, options, policy, judge_line, make_row)

    return run


def aggregate(files: Sequence[InputFile], params: AggregateParams, corpus: StagedFile,
              rejects: StagedFile, jobs: int = 1, progress: ProgressCallback | None = None) -> AggregateOutcome:
    """Read ``files`` once: resolve duplicates, spill unified rows, write the winners sorted."""
    resolver = _Resolver()
    per_input: list[dict[str, int]] = []
    digests: list[Digest] = []
    starts: list[int] = []
    overrides = _overrides_for(files, params)
    offsets = array("q")
    lengths = array("I")
    spill = _Spill(corpus.target, corpus.display)  # creates its file last: nothing to clean if it raises
    try:
        with WorkerPool(jobs, aggregate_block_function, (params, overrides)) as pool:
            for file in files:
                counters = zero_counters(AGGREGATE_COUNTERS)
                per_input.append(counters)
                starts.append(len(offsets))
                reader = JsonlReader(file.path, file.display, params.jsonl)
                for result in tally_lines(pool.map(metered(reader.blocks(), progress)), counters, rejects):
                    if result is None:
                        continue
                    _, digest, label, std, line, sort_key, unified, native, kept, nulled = result
                    counters["non_finite_kept"] += kept
                    counters["non_finite_nulled"] += nulled
                    ordinal = len(offsets)
                    start, length = spill.write(line)
                    offsets.append(start)
                    lengths.append(length)
                    outcome, displaced = resolver.offer(digest, label, std, ordinal, sort_key, unified, native)
                    if outcome == "same_corpus":
                        counters["same_corpus_duplicates"] += 1
                    elif outcome == "lost":
                        counters["cross_corpus_duplicates"] += 1
                    elif displaced is not None:
                        per_input[bisect.bisect_right(starts, displaced) - 1]["cross_corpus_duplicates"] += 1
                digests.append(reader.digest)
        summary, rows_by_corpus = _write_sorted(params, resolver, spill, offsets, lengths, corpus)
    finally:
        spill.close()
    for ordinal in resolver.winner:
        per_input[bisect.bisect_right(starts, ordinal) - 1]["rows_out"] += 1
    outcomes = tuple(InputOutcome(file, digest, counters)
                     for file, digest, counters in zip(files, digests, per_input, strict=True))
    totals = sum_counters(per_input, AGGREGATE_COUNTERS)
    applied = {file.display: overrides[file.display] for file in files if file.display in overrides}
    return AggregateOutcome(outcomes, totals, rows_by_corpus, applied, summary)


def _overrides_for(files: Sequence[InputFile], params: AggregateParams) -> dict[str, str]:
    """Label override per input file; an override may name the file or its folder argument."""
    result: dict[str, str] = {}
    for file in files:
        label = params.overrides.get(file.display, params.overrides.get(file.arg))
        if label is not None:
            result[file.display] = label
    return result


def _write_sorted(params: AggregateParams, resolver: _Resolver, spill: _Spill, offsets: array[int],
                  lengths: array[int], corpus: StagedFile) -> tuple[AggregateSummary, dict[str, int]]:
    """Copy the winners' unified lines from the spill, sorted; tally what was written."""
    summary = AggregateSummary({label: (scale.native_min, scale.native_max)
                                for label, scale in params.scales.items()})
    labels = resolver.labels()
    entries = [sort_key + b"\x00" + ordinal.to_bytes(8, "big")
               for sort_key, ordinal in zip(resolver.winner_sort, resolver.winner, strict=True)]
    rows_by_corpus: dict[str, int] = {}
    for slot in range(len(resolver.winner)):
        label = labels[resolver.winner_corpus[slot]]
        rows_by_corpus[label] = rows_by_corpus.get(label, 0) + 1
        summary.add(label, resolver.winner_unified[slot], resolver.winner_native[slot])
    resolver.winner_sort.clear()
    entries.sort()
    spill.flush()
    for entry in entries:
        ordinal = int.from_bytes(entry[-8:], "big")
        corpus.write_line(spill.read(offsets[ordinal], lengths[ordinal]))
    return summary, dict(sorted(rows_by_corpus.items()))
