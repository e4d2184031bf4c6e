"""The aggregate core: MOS corpora onto one 0-100 axis, de-duplicated across corpora.

``aggregate_corpora.py`` is the reference for which rows come out (same winners, labels,
values and fields); the README's migration table lists where we differ on purpose.
Each input is read once. Worker processes parse and judge the rows and serialise each
usable row's output line; the main process drives the :class:`Resolver` (per unique key
only what the rule needs: the winner, its std-dev, corpus and sort key) and appends every
output line to a spill file next to the output. The winners are then copied from the spill
in sorted order. Memory grows with unique keys (plus 12 bytes per usable row for the spill
index), never with row width.
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
from typing import Any, Final, NamedTuple

from corpusprov.defaults import UNIFIED_FIELDS
from corpusprov.errors import DataError, OutputError
from corpusprov.fsutil import TEMP_PREFIX
from corpusprov.inputs import InputFile
from corpusprov.jsonl import Block, Digest, JsonlReader, LineError, canonical_line, find_special_values
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
from corpusprov.scales import AggregateParams, ScaleEntry
from corpusprov.summary import AggregateSummary

__all__ = ["AGGREGATE_ACCOUNTING", "AGGREGATE_COUNTERS", "AggregateJudge", "AggregateOutcome", "Offer",
           "Resolver", "aggregate"]

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
    "rejected_bad_field",
    *(f"rejected_{reason}" for reason in INVALID_ROW_REASONS),
    "rejected_non_finite_key",
    "rejected_non_finite_value",
    "non_finite_kept",
    "non_finite_nulled",
    "blank_lines_skipped",
    "crlf_lines",
    "numbers_from_strings",
    "fields_dropped_rows",
)

AGGREGATE_ACCOUNTING: Final = {
    "in": "rows_in",
    "out": ["rows_out"],
    "duplicates": ["cross_corpus_duplicates", "same_corpus_duplicates"],
    "rejected": [name for name in AGGREGATE_COUNTERS if name.startswith("rejected_")],
}

_FALLBACK_FIELDS: Final = ("\x00fallback", "src", "corpus_source")
_UNKNOWN_STD: Final = math.inf
#: The unified row's fields the stage computes; the rest are copied with their defaults.
_COMPUTED: Final = frozenset({"mos", "mos_native", "mos_native_scale", "corpus_source"})
_COPIED: Final = tuple((name, kind, default) for name, kind, default in UNIFIED_FIELDS
                       if name not in _COMPUTED)
_UNIFIED_NAMES: Final = frozenset(name for name, _, _ in UNIFIED_FIELDS)


class _BadFieldError(Exception):
    """A unified field whose value cannot take the field's type."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def _finite(value: int | float) -> bool:
    # math.isfinite() converts an int to float and overflows past 1e308: ints are finite.
    return type(value) is int or math.isfinite(value)


def _number(value: Any) -> tuple[int | float | None, bool]:
    """``(number, read_from_a_string)``; ``None`` when ``value`` is no number.

    Numeric strings (``"3.5"``) are numbers, as the original's ``float(...)`` reads them;
    booleans, null and other strings are not.
    """
    kind = type(value)
    if kind is int or kind is float:
        return value, False
    if kind is str:
        try:
            return float(value), True
        except ValueError:
            return None, False
    return None, False


def _copy_field(name: str, kind: type, default: Any, value: Any) -> Any:
    """One unified field: null/missing takes the default; else the value in the field's type."""
    if value is None:
        return default
    if kind is str:
        if type(value) is str:
            return value
        raise _BadFieldError(name, f"{name} {value!r} is not a string")
    if kind is int:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)  # 1920.0 -> 1920, as int() did in the original
        raise _BadFieldError(name, f"{name} {value!r} is not an integer")
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _BadFieldError(name, f"{name} {value!r} is too large for a float") from None
    raise _BadFieldError(name, f"{name} {value!r} is not a number")


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


class AggregateJudge:
    """Applies the aggregate policy to one parsed line (the stage's workers and ``trace`` share it)."""

    def __init__(self, params: AggregateParams) -> None:
        self.params = params
        self.required = frozenset(params.required_keys)
        self.key_fields = params.dedup_key
        self.unified_rows = params.output_row == "unified"

    def judge(self, line_no: int, row: Any, special: bool, error: LineError | None,
              display: str, override: str | None) -> Verdict:
        """Judge one line: a usable row carries its label, scores, key digest and output row."""
        verdict = Verdict()
        params = self.params
        if not check_line(verdict, line_no, row, special, error, display, required=self.required,
                          on_invalid_row=params.on_invalid_row, group="aggregate"):
            return verdict
        if override is not None:
            label: Any = override
        else:
            source = row.get("corpus_source")
            # An empty or null corpus_source falls back to corpus, as in the original.
            label = source if source is not None and source != "" else row.get("corpus")
        if label is not None and not isinstance(label, str):
            return self._invalid(verdict, "invalid_label", f"corpus label {label!r} is not a string",
                                 display, line_no, row, special,
                                 "write the corpus label as a string, or set an override in "
                                 "aggregate.overrides")
        scale = params.scales.get(label) if label is not None else None
        if label is None or scale is None:
            return verdict.reject("unknown_corpus",
                                  f"corpus label {label!r} has no entry in aggregate.scales", row,
                                  special=special)
        resolved: str = label
        mos, mos_from_string = _number(row["mos"])
        if mos is None:
            return self._invalid(verdict, "invalid_mos", f"mos {row['mos']!r} is not a number", display,
                                 line_no, row, special, "write mos as a JSON number")
        if not _finite(mos):
            shown = "NaN" if math.isnan(mos) else ("Infinity" if mos > 0 else "-Infinity")
            return verdict.reject("non_finite_mos", f"mos {shown} is not a finite number", row,
                                  special=special)
        # Ints compare with floats exactly, so a 400-digit mos is simply out of range.
        if not scale.contains(mos, params.range_slack):
            return verdict.reject(
                "bad_scale",
                f"mos {mos!r} is outside {label}'s {scale.native_min:g}-{scale.native_max:g} "
                f"scale (slack {params.range_slack:g})", row, special=special)
        native = float(mos)
        verdict.label = resolved
        verdict.native = native
        verdict.unified = scale.to_unified(native)
        verdict.from_strings = int(mos_from_string)
        std, std_from_string = _number(row.get("mos_std_dev"))
        if self.unified_rows:
            try:
                verdict.row = self._unified_row(row, resolved, scale, verdict, std)
            except _BadFieldError as problem:
                return verdict.reject("bad_field", problem.message, row, special=special)
            verdict.special = special and bool(find_special_values(verdict.row))
            verdict.dropped = not row.keys() <= _UNIFIED_NAMES
        verdict.from_strings += int(std_from_string)
        try:
            verdict.digest = self._key(row, resolved)
        except NonFiniteKeyError as exc:
            return verdict.reject("non_finite_key", f"key field {exc.field_name!r} is not a finite "
                                  "number", row, special=True)
        if std is None or not _finite(std) or std <= 0:
            verdict.std = _UNKNOWN_STD
        elif params.std_dev_units == "unified":
            # Std-devs of a 1-5 and a 0-100 corpus only compare on one axis.
            verdict.std = float(std) * 100.0 / scale.span()
        else:
            verdict.std = float(std)
        apply_non_finite(verdict, params.non_finite)
        return verdict

    def _key(self, row: dict[str, Any], label: str) -> bytes:
        """The dedup key as the original forms it: a field that is missing, not a string or
        empty is no identity, so such rows are keyed by ``(src, corpus_source)``."""
        if all(type(value) is str and value for value in map(row.get, self.key_fields)):
            return key_digest(row, self.key_fields)
        return key_digest({"\x00fallback": True, "src": row.get("src"), "corpus_source": label},
                          _FALLBACK_FIELDS)

    def sort_key(self, row: dict[str, Any], label: str) -> bytes:
        """Output order: corpus_source, src_sha256, then the original's key text (its
        ``__nokey__/<src>/<corpus>`` for keyless rows)."""
        values = [row.get(name) for name in self.key_fields]
        if all(type(value) is str and value for value in values):
            tail = b"\x00".join(map(_sort_text, values))
        else:
            src = row.get("src")
            tail = f"__nokey__/{'' if src is None else src}/{label}".encode("utf-8", "surrogatepass")
        return b"\x00".join((label.encode("utf-8", "surrogatepass"), _sort_text(row.get("src_sha256")),
                             tail))

    def _unified_row(self, row: dict[str, Any], label: str, scale: ScaleEntry, verdict: Verdict,
                     std: int | float | None) -> dict[str, Any]:
        """The original's 17-field row (``aggregated_at_utc`` aside: it lives in the manifest)."""
        out: dict[str, Any] = {}
        for name, kind, default in _COPIED:
            value = row.get(name)
            if name == "mos_std_dev" and type(value) is str and std is not None:
                value = std  # a numeric string, read as the number it spells
            out[name] = _copy_field(name, kind, label if name == "corpus" else default, value)
        out["mos"] = verdict.unified
        out["mos_native"] = verdict.native
        out["mos_native_scale"] = scale.label
        out["corpus_source"] = label
        return out

    def _invalid(self, verdict: Verdict, reason: str, message: str, display: str, line_no: int,
                 row: Any, special: bool, fix: str) -> Verdict:
        if self.params.on_invalid_row == "fail":
            raise DataError(message, path=display, line=line_no,
                            fix=f"{fix}; or set aggregate.on_invalid_row: reject")
        return verdict.reject(reason, message, row, special=special)


class Offer(NamedTuple):
    """What the resolver decided about one offered row."""

    outcome: str
    """``new`` (first of its key), ``won`` (displaced the winner), ``lost`` (cross-corpus, kept
    the winner) or ``same_corpus`` (dropped: same corpus as the winner)."""
    rival: int
    """Ordinal of the winner it was compared with (``-1`` for ``new``)."""
    rival_std: float
    """That winner's std-dev as compared (``inf`` when unknown)."""


class Resolver:
    """The aggregate dedup rule, once: the stage and ``trace`` both drive it.

    Per unique key it keeps the current winner (ordinal, std-dev, corpus, scores, sort key).
    A row offered in input order is compared with the *current* winner only: the same
    resolved corpus drops it; another corpus makes it a cross-corpus duplicate, and the
    smaller std-dev wins (ties keep the winner), as ``aggregate_corpora.py`` decides.
    """

    def __init__(self) -> None:
        self.table = DigestTable()
        self.winner = array("q")
        self.winner_std = array("d")
        self.winner_corpus = array("i")
        self.winner_unified = array("d")
        self.winner_native = array("d")
        self.winner_dropped = array("b")
        self.winner_sort: list[bytes] = []
        self.corpus_ids: dict[str, int] = {}

    def offer(self, digest: bytes, label: str, std: float, ordinal: int, sort_key: bytes = b"",
              unified: float = 0.0, native: float = 0.0, dropped: bool = False) -> Offer:
        """Offer a usable row; the decision says what became of it (and of the winner)."""
        corpus = self.corpus_ids.setdefault(label, len(self.corpus_ids))
        slot = self.table.setdefault(digest, len(self.winner))
        if slot is None:
            self.winner.append(ordinal)
            self.winner_std.append(std)
            self.winner_corpus.append(corpus)
            self.winner_unified.append(unified)
            self.winner_native.append(native)
            self.winner_dropped.append(dropped)
            self.winner_sort.append(sort_key)
            return Offer("new", -1, _UNKNOWN_STD)
        rival, rival_std = self.winner[slot], self.winner_std[slot]
        if self.winner_corpus[slot] == corpus:
            return Offer("same_corpus", rival, rival_std)
        if std < rival_std:
            self.winner[slot] = ordinal
            self.winner_std[slot] = std
            self.winner_corpus[slot] = corpus
            self.winner_unified[slot] = unified
            self.winner_native[slot] = native
            self.winner_dropped[slot] = dropped
            self.winner_sort[slot] = sort_key
            return Offer("won", rival, rival_std)
        return Offer("lost", rival, rival_std)

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
    """The per-block work (runs in worker processes): parse, judge, build the output line.

    A usable row's result is ``(ROW, digest, label, std, output_line, sort_key, unified,
    native, non_finite_kept, non_finite_nulled, numbers_from_strings, fields_dropped)``; see
    :func:`~corpusprov.rowpolicy.judge_block`.
    """
    judge = AggregateJudge(params)
    options = params.jsonl
    policy = params.non_finite
    passthrough = params.output_row == "passthrough"

    def make_row(verdict: Verdict, kept: int, nulled: int) -> tuple[Any, ...]:
        label = verdict.label or ""
        out = verdict.row
        if passthrough:
            out = dict(out)
            out["mos"] = verdict.unified
            out["mos_native"] = verdict.native
            out["mos_native_scale"] = params.scales[label].label
            out["corpus_source"] = label
        return (ROW, verdict.digest, label, verdict.std, canonical_line(out, special=verdict.special),
                judge.sort_key(out, label), verdict.unified, verdict.native, kept, nulled,
                verdict.from_strings, verdict.dropped)

    def run(block: Block) -> list[tuple[Any, ...]]:
        override = overrides.get(block.display)

        def judge_line(line_no: int, row: Any, special: bool, error: LineError | None) -> Verdict:
            return judge.judge(line_no, row, special, error, block.display, override)

        return judge_block(block, options, policy, judge_line, make_row)

    return run


def aggregate(files: Sequence[InputFile], params: AggregateParams, corpus: StagedFile,
              rejects: StagedFile, jobs: int = 1, progress: ProgressCallback | None = None) -> AggregateOutcome:
    """Read ``files`` once: resolve duplicates, spill unified rows, write the winners sorted."""
    resolver = Resolver()
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
                    (_, digest, label, std, line, sort_key, unified, native, kept, nulled, from_strings,
                     dropped) = result
                    counters["non_finite_kept"] += kept
                    counters["non_finite_nulled"] += nulled
                    counters["numbers_from_strings"] += from_strings
                    ordinal = len(offsets)
                    start, length = spill.write(line)
                    offsets.append(start)
                    lengths.append(length)
                    decision = resolver.offer(digest, label, std, ordinal, sort_key, unified, native, dropped)
                    if decision.outcome == "same_corpus":
                        counters["same_corpus_duplicates"] += 1
                    elif decision.outcome == "lost":
                        counters["cross_corpus_duplicates"] += 1
                    elif decision.outcome == "won":
                        per_input[bisect.bisect_right(starts, decision.rival) - 1]["cross_corpus_duplicates"] += 1
                counters["crlf_lines"] = reader.stats.crlf_lines
                digests.append(reader.digest)
        summary, rows_by_corpus = _write_sorted(params, resolver, spill, offsets, lengths, corpus)
    finally:
        spill.close()
    for ordinal, dropped in zip(resolver.winner, resolver.winner_dropped, strict=True):
        owner = per_input[bisect.bisect_right(starts, ordinal) - 1]
        owner["rows_out"] += 1
        owner["fields_dropped_rows"] += dropped
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


def _write_sorted(params: AggregateParams, resolver: Resolver, spill: _Spill, offsets: array[int],
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
