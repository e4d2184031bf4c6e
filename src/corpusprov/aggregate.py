"""The aggregate core: MOS corpora onto one 0-100 axis, de-duplicated across corpora.

Memory does not grow with row width: the first pass keeps, per unique key, only what the
resolver needs (winning row number, its std-dev and corpus, the corpora seen); the second
pass re-reads the inputs (refusing if a shard changed), writes each winner's unified line
to a spill file, and the output is copied from the spill in sorted order.
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
from corpusprov.jsonl import Digest, JsonlReader, LineError, canonical_line, is_blank
from corpusprov.keys import DigestTable, NonFiniteKeyError, key_digest
from corpusprov.merge import InputOutcome
from corpusprov.outputs import StagedFile
from corpusprov.rowpolicy import (
    INVALID_ROW_REASONS,
    Verdict,
    apply_non_finite,
    check_line,
    count_non_finite,
    reject_line,
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
    """Per unique key: the winning row, its std-dev and corpus, and which corpora were seen."""

    def __init__(self) -> None:
        self.table = DigestTable()
        self.winner_row = array("q")
        self.winner_std = array("d")
        self.winner_corpus = array("i")
        self.corpora_seen: list[int] = []
        self.corpus_ids: dict[str, int] = {}

    def offer(self, verdict: Verdict, row_index: int) -> tuple[str, int | None]:
        """Judge a usable row: ``("new"|"won"|"lost"|"same_corpus", displaced_row_index)``."""
        corpus = self.corpus_ids.setdefault(verdict.label or "", len(self.corpus_ids))
        bit = 1 << corpus
        slot = self.table.setdefault(verdict.digest, len(self.winner_row))
        if slot is None:
            self.winner_row.append(row_index)
            self.winner_std.append(verdict.std)
            self.winner_corpus.append(corpus)
            self.corpora_seen.append(bit)
            return "new", None
        if self.corpora_seen[slot] & bit:
            return "same_corpus", None
        self.corpora_seen[slot] |= bit
        if verdict.std < self.winner_std[slot]:
            displaced = self.winner_row[slot]
            self.winner_row[slot] = row_index
            self.winner_std[slot] = verdict.std
            self.winner_corpus[slot] = corpus
            return "won", displaced
        return "lost", None


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


def aggregate(files: Sequence[InputFile], params: AggregateParams, corpus: StagedFile,
              rejects: StagedFile) -> AggregateOutcome:
    """Two passes over ``files``: resolve duplicates, then write unified winners sorted."""
    judge = _Judge(params)
    resolver = _Resolver()
    per_input: list[dict[str, int]] = []
    digests: list[Digest] = []
    starts: list[int] = []
    overrides = _overrides_for(files, params)
    row_index = 0
    for file in files:
        counters = zero_counters(AGGREGATE_COUNTERS)
        per_input.append(counters)
        starts.append(row_index)
        override = overrides.get(file.display)
        reader = JsonlReader(file.path, file.display, params.jsonl)
        for line_no, row, special, error in reader:
            if error is not None and is_blank(error):
                counters["blank_lines_skipped"] += 1
                continue
            counters["rows_in"] += 1
            verdict = judge.judge(line_no, row, special, error, file.display, override)
            if verdict.reason is not None:
                counters["rejected_" + verdict.reason] += 1
                rejects.write_line(reject_line(file.display, line_no, verdict))
                row_index += 1
                continue
            count_non_finite(counters, row, special, verdict, params.non_finite)
            outcome, displaced = resolver.offer(verdict, row_index)
            if outcome == "same_corpus":
                counters["same_corpus_duplicates"] += 1
            elif outcome == "lost":
                counters["cross_corpus_duplicates"] += 1
            elif outcome == "won" and displaced is not None:
                per_input[bisect.bisect_right(starts, displaced) - 1]["cross_corpus_duplicates"] += 1
            row_index += 1
        digests.append(reader.digest)
    winners = bytearray((row_index + 7) // 8)
    for winner in resolver.winner_row:
        winners[winner >> 3] |= 1 << (winner & 7)
        per_input[bisect.bisect_right(starts, winner) - 1]["rows_out"] += 1
    summary = AggregateSummary({label: (scale.native_min, scale.native_max)
                                for label, scale in params.scales.items()})
    rows_by_corpus = _write_sorted(files, params, judge, overrides, digests, winners, corpus, summary)
    outcomes = tuple(InputOutcome(file, digest, counters)
                     for file, digest, counters in zip(files, digests, per_input, strict=True))
    totals = zero_counters(AGGREGATE_COUNTERS)
    for counters in per_input:
        for name, value in counters.items():
            totals[name] += value
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


def _write_sorted(files: Sequence[InputFile], params: AggregateParams, judge: _Judge,
                  overrides: dict[str, str], digests: Sequence[Digest], winners: bytearray,
                  corpus: StagedFile, summary: AggregateSummary) -> dict[str, int]:
    """Second pass: unified winner lines to a spill file, then out in sorted order."""
    spill = _Spill(corpus.target, corpus.display)  # creates its file last: nothing to clean if it raises
    try:
        entries: list[bytes] = []
        offsets = array("q")
        lengths = array("q")
        rows_by_corpus: dict[str, int] = {}
        row_index = 0
        for file, first_digest in zip(files, digests, strict=True):
            override = overrides.get(file.display)
            reader = JsonlReader(file.path, file.display, params.jsonl)
            for line_no, row, special, error in reader:
                if error is not None and is_blank(error):
                    continue
                if winners[row_index >> 3] & (1 << (row_index & 7)):
                    verdict = judge.judge(line_no, row, special, error, file.display, override)
                    if verdict.reason is not None or verdict.label is None:
                        raise DataError("input changed while it was being aggregated",
                                        path=file.display, line=line_no,
                                        fix="re-run once nothing else writes to the shards")
                    label = verdict.label
                    scale = params.scales[label]
                    unified = dict(verdict.row)
                    unified["mos_native"] = unified["mos"]
                    unified["mos"] = verdict.unified
                    unified["mos_native_scale"] = scale.label
                    unified["corpus_source"] = label
                    start, length = spill.write(canonical_line(unified, special=verdict.special))
                    ordinal = len(offsets)
                    offsets.append(start)
                    lengths.append(length)
                    entries.append(b"\x00".join((label.encode(), _sort_text(unified.get("src_sha256")),
                                                 _sort_text(unified.get("src")),
                                                 row_index.to_bytes(8, "big") + ordinal.to_bytes(8, "big"))))
                    rows_by_corpus[label] = rows_by_corpus.get(label, 0) + 1
                    summary.add(label, verdict.unified, float(unified["mos_native"]))
                row_index += 1
            if reader.digest != first_digest:
                raise DataError("input changed while it was being aggregated", path=file.display,
                                fix="re-run once nothing else writes to the shards")
        spill.flush()
        entries.sort()
        try:
            for entry in entries:
                ordinal = int.from_bytes(entry[-8:], "big")
                corpus.write_line(spill.read(offsets[ordinal], lengths[ordinal]))
        except OSError as exc:
            raise OutputError(f"cannot read back the spill file: {exc.strerror or exc}",
                              path=corpus.display) from exc
        return dict(sorted(rows_by_corpus.items()))
    finally:
        spill.close()
