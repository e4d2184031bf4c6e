"""The merge core: validate encode-grid rows and de-duplicate them on a natural key."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from corpusprov.errors import DataError
from corpusprov.inputs import InputFile
from corpusprov.jsonl import Digest, JsonlReader, LineError, canonical_line, is_blank
from corpusprov.keys import DigestTable, NonFiniteKeyError, key_digest
from corpusprov.outputs import StagedFile
from corpusprov.params import MergeParams
from corpusprov.rowpolicy import (
    Verdict,
    apply_non_finite,
    check_line,
    count_non_finite,
    reject_line,
    zero_counters,
)
from corpusprov.summary import MergeSummary

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
    summary: MergeSummary
    """Per-encoder statistics of the rows written."""


class _Judge:
    """Applies the merge policy to one parsed line."""

    def __init__(self, params: MergeParams) -> None:
        self.params = params
        self.required = frozenset(params.required_keys)
        self.key_fields = params.dedup_key

    def judge(self, line_no: int, row: Any, special: bool, error: LineError | None,
              display: str) -> Verdict:
        verdict = Verdict()
        params = self.params
        if not check_line(verdict, line_no, row, special, error, display, required=self.required,
                          on_invalid_row=params.on_invalid_row, group="merge"):
            return verdict
        try:
            verdict.digest = key_digest(row, self.key_fields)
        except NonFiniteKeyError as exc:
            return verdict.reject("non_finite_key",
                                  f"natural-key field {exc.field_name!r} is not a finite number",
                                  row, special=True)
        apply_non_finite(verdict, params.non_finite)
        return verdict


def merge(files: Sequence[InputFile], params: MergeParams, corpus: StagedFile,
          rejects: StagedFile) -> MergeOutcome:
    """Stream ``files`` into ``corpus`` (winners) and ``rejects``; count every row.

    ``keep: first`` is one pass. ``keep: last`` needs to know the last occurrence before
    writing, so it reads twice and refuses to go on if a shard changed in between.
    """
    judge = _Judge(params)
    summary = MergeSummary()
    table = DigestTable()
    per_input: list[dict[str, int]] = []
    digests: list[Digest] = []
    starts: list[int] = []
    row_index = 0
    keep_last = params.keep == "last"
    for file in files:
        counters = zero_counters(MERGE_COUNTERS)
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
                rejects.write_line(reject_line(file.display, line_no, verdict))
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
                summary.add(verdict.row)
                corpus.write_line(canonical_line(verdict.row, special=verdict.special))
            count_non_finite(counters, row, special, verdict, params.non_finite)
            row_index += 1
        digests.append(reader.digest)
    if keep_last:
        _write_last(files, params, judge, table, digests, corpus, summary)
    outcomes = tuple(InputOutcome(file, digest, counters)
                     for file, digest, counters in zip(files, digests, per_input, strict=True))
    totals = zero_counters(MERGE_COUNTERS)
    for counters in per_input:
        for name, value in counters.items():
            totals[name] += value
    return MergeOutcome(outcomes, totals, summary)


def _write_last(files: Sequence[InputFile], params: MergeParams, judge: _Judge,
                table: DigestTable, digests: Sequence[Digest], corpus: StagedFile,
                summary: MergeSummary) -> None:
    """Second pass for ``keep: last``: write each key's last valid occurrence in input order."""
    row_index = 0
    for file, first_digest in zip(files, digests, strict=True):
        reader = JsonlReader(file.path, file.display, params.jsonl)
        for line_no, row, special, error in reader:
            if error is not None and is_blank(error):
                continue
            verdict = judge.judge(line_no, row, special, error, file.display)
            if verdict.reason is None and table.get(verdict.digest) == row_index:
                summary.add(verdict.row)
                corpus.write_line(canonical_line(verdict.row, special=verdict.special))
            row_index += 1
        if reader.digest != first_digest:
            raise DataError("input changed while it was being merged", path=file.display,
                            fix="re-run once nothing else writes to the shards")
