"""The merge core: validate encode-grid rows and de-duplicate them on a natural key."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from corpusprov.errors import DataError
from corpusprov.inputs import InputFile
from corpusprov.jsonl import (
    Digest,
    JsonlReader,
    LineError,
    canonical_line,
    find_special_values,
    is_blank,
    replace_non_finite,
)
from corpusprov.keys import DigestTable, NonFiniteKeyError, key_digest
from corpusprov.outputs import StagedFile
from corpusprov.params import MergeParams

__all__ = ["MERGE_COUNTERS", "InputOutcome", "MergeOutcome", "merge"]

#: Every counter a merge reports, so metrics columns are the same in every experiment.
MERGE_COUNTERS: Final = (
    "rows_in",
    "rows_out",
    "duplicates",
    "rejected_invalid_json",
    "rejected_truncated_line",
    "rejected_invalid_utf8",
    "rejected_not_an_object",
    "rejected_duplicate_key",
    "rejected_missing_key",
    "rejected_non_finite_key",
    "rejected_non_finite_value",
    "non_finite_kept",
    "non_finite_nulled",
    "blank_lines_skipped",
)

#: Which counters must add up: rows_in = rows_out + duplicates + every rejected_*.
MERGE_ACCOUNTING: Final = {
    "in": "rows_in",
    "out": ["rows_out"],
    "duplicates": ["duplicates"],
    "rejected": [name for name in MERGE_COUNTERS if name.startswith("rejected_")],
}


@dataclass(frozen=True)
class InputOutcome:
    """What one shard contributed."""

    file: InputFile
    """The shard."""
    digest: Digest
    """Hash of the bytes read (and parsed)."""
    counters: dict[str, int]
    """Per-input counters; they add up like the totals."""


@dataclass(frozen=True)
class MergeOutcome:
    """The result of a merge: per-input and total counters."""

    inputs: tuple[InputOutcome, ...]
    """One entry per shard, in input order."""
    counters: dict[str, int]
    """Totals."""


def _new_counters() -> dict[str, int]:
    return dict.fromkeys(MERGE_COUNTERS, 0)


class _Verdict:
    """How one row was judged; built once per row, shared by both passes."""

    __slots__ = ("detail", "digest", "reason", "row", "special")

    def __init__(self) -> None:
        self.reason: str | None = None
        self.detail = ""
        self.digest = b""
        self.row: Any = None
        self.special = False


class _Judge:
    """Applies the merge policy to one parsed line."""

    def __init__(self, params: MergeParams) -> None:
        self.params = params
        self.required = frozenset(params.required_keys)
        self.key_fields = params.dedup_key

    def judge(self, line_no: int, row: Any, special: bool, error: LineError | None,
              display: str) -> _Verdict:
        verdict = _Verdict()
        params = self.params
        if error is not None:
            if params.on_invalid_row == "fail":
                raise error
            verdict.reason = error.reason
            verdict.detail = error.message
            verdict.row = {"raw": error.raw.decode("utf-8", "replace")}
            return verdict
        if not row.keys() >= self.required:
            missing = sorted(self.required.difference(row))
            shown = ", ".join(repr(name) for name in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            message = f"missing required key{'s' if len(missing) > 1 else ''} {shown}{more}"
            if params.on_invalid_row == "fail":
                raise DataError(message, path=display, line=line_no,
                                fix="add the key to the row, or drop it from "
                                    "merge.required_keys in params.yaml")
            verdict.reason = "missing_key"
            verdict.detail = message
            verdict.row = row
            return verdict
        try:
            verdict.digest = key_digest(row, self.key_fields)
        except NonFiniteKeyError as exc:
            verdict.reason = "non_finite_key"
            verdict.detail = f"natural-key field {exc.field_name!r} is not a finite number"
            verdict.row = row
            verdict.special = True
            return verdict
        verdict.row = row
        verdict.special = special
        if special and params.non_finite != "keep":
            bad = [where for where, value in find_special_values(row) if isinstance(value, float)]
            if bad and params.non_finite == "reject":
                verdict.reason = "non_finite_value"
                verdict.detail = f"non-finite value in {', '.join(bad)}"
                return verdict
            if bad:
                verdict.row = replace_non_finite(row)
                verdict.special = bool(find_special_values(verdict.row))
        return verdict


def _non_finite_count(row: Any) -> int:
    return sum(1 for _, value in find_special_values(row) if isinstance(value, float))


def _reject_line(display: str, line_no: int, verdict: _Verdict) -> bytes:
    record = {"reason": verdict.reason, "path": display, "line": line_no,
              "detail": verdict.detail, "row": verdict.row}
    return canonical_line(record, special=verdict.special)


def merge(files: Sequence[InputFile], params: MergeParams, corpus: StagedFile,
          rejects: StagedFile) -> MergeOutcome:
    """Stream ``files`` into ``corpus`` (winners) and ``rejects``; count every row.

    ``keep: first`` is one pass. ``keep: last`` needs to know the last occurrence before
    writing, so it reads twice and refuses to go on if a shard changed in between.
    """
    judge = _Judge(params)
    table = DigestTable()
    per_input: list[dict[str, int]] = []
    digests: list[Digest] = []
    starts: list[int] = []
    row_index = 0
    keep_last = params.keep == "last"
    for file in files:
        counters = _new_counters()
        per_input.append(counters)
        starts.append(row_index)
        reader = JsonlReader(file.path, file.display, params.jsonl)
        for line_no, row, special, error in reader:
            if error is not None and is_blank(error):
                counters["blank_lines_skipped"] += 1
                continue
            counters["rows_in"] += 1
            verdict = judge.judge(line_no, row, special, error, file.display)
            if verdict.reason is not None:
                counters["rejected_" + verdict.reason] += 1
                rejects.write_line(_reject_line(file.display, line_no, verdict))
                row_index += 1
                continue
            if keep_last:
                replaced = table.set(verdict.digest, row_index)
                if replaced is not None:
                    owner = bisect.bisect_right(starts, replaced) - 1
                    per_input[owner]["duplicates"] += 1
                    per_input[owner]["rows_out"] -= 1
                counters["rows_out"] += 1
            elif table.setdefault(verdict.digest, row_index) is not None:
                counters["duplicates"] += 1
            else:
                counters["rows_out"] += 1
                corpus.write_line(canonical_line(verdict.row, special=verdict.special))
            if verdict.special and params.non_finite == "keep":
                counters["non_finite_kept"] += _non_finite_count(verdict.row)
            elif special and params.non_finite == "null" and verdict.row is not row:
                counters["non_finite_nulled"] += _non_finite_count(row)
            row_index += 1
        digests.append(reader.digest)
    if keep_last:
        _write_last(files, params, judge, table, digests, corpus)
    outcomes = tuple(InputOutcome(file, digest, counters)
                     for file, digest, counters in zip(files, digests, per_input, strict=True))
    totals = _new_counters()
    for counters in per_input:
        for name, value in counters.items():
            totals[name] += value
    return MergeOutcome(outcomes, totals)


def _write_last(files: Sequence[InputFile], params: MergeParams, judge: _Judge,
                table: DigestTable, digests: Sequence[Digest], corpus: StagedFile) -> None:
    """Second pass for ``keep: last``: write each key's last valid occurrence in input order."""
    row_index = 0
    for file, first_digest in zip(files, digests, strict=True):
        reader = JsonlReader(file.path, file.display, params.jsonl)
        for line_no, row, special, error in reader:
            if error is not None and is_blank(error):
                continue
            verdict = judge.judge(line_no, row, special, error, file.display)
            if verdict.reason is None and table.get(verdict.digest) == row_index:
                corpus.write_line(canonical_line(verdict.row, special=verdict.special))
            row_index += 1
        if reader.digest != first_digest:
            raise DataError("input changed while it was being merged", path=file.display,
                            fix="re-run once nothing else writes to the shards")
