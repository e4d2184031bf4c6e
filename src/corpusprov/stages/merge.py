"""The merge core: validate encode-grid rows and de-duplicate them on a natural key."""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from corpusprov.io.canonical import canonical_line
from corpusprov.io.inputs import InputFile
from corpusprov.io.jsonl import Block, LineError
from corpusprov.io.outputs import StagedFile
from corpusprov.params.stages import MergeParams
from corpusprov.stages.core import ROW_DIGEST, InputOutcome, StageInputs
from corpusprov.stages.keys import DigestSet, DigestTable, NonFiniteKeyError, key_digest
from corpusprov.stages.rowpolicy import (
    INVALID_ROW_REASONS,
    BlockResult,
    NativeAnswers,
    Prepass,
    Verdict,
    apply_non_finite,
    check_line,
    judge_block,
    native_context,
)
from corpusprov.stages.summary import MergeSummary, preset_text
from corpusprov.stages.workers import BlockFunction, ProgressCallback, WorkerPool

__all__ = [
    "MERGE_COUNTERS",
    "MERGE_TOTAL_COUNTERS",
    "NATIVE_MERGE_ROWS",
    "MergeJudge",
    "MergeOutcome",
    "MergeRow",
    "keep_first_py",
    "merge",
    "merge_uses_threads",
    "native_prepass",
    "source_digest",
]

#: Every counter a merge reports, so metrics columns are the same in every experiment.
MERGE_COUNTERS: Final = (
    "rows_in",
    "rows_out",
    "duplicates",
    *(f"rejected_{reason}" for reason in INVALID_ROW_REASONS),
    "rejected_non_finite_key",
    "rejected_non_finite_value",
    "non_finite_kept",
    "non_finite_nulled",
    "blank_lines_skipped",
    "crlf_lines",
)

#: Counters of the whole run only (no per-input share): distinct sources among rows written.
MERGE_TOTAL_COUNTERS: Final = ("unique_sources",)

#: Which counters must add up: rows_in = rows_out + duplicates + every rejected_*.
MERGE_ACCOUNTING: Final = {
    "in": "rows_in",
    "out": ["rows_out"],
    "duplicates": ["duplicates"],
    "rejected": [name for name in MERGE_COUNTERS if name.startswith("rejected_")],
}


@dataclass(frozen=True)
class MergeOutcome:
    """The result of a merge: per-input and total counters."""

    inputs: tuple[InputOutcome, ...]
    """One entry per shard, in input order."""
    counters: dict[str, int]
    """Totals."""
    summary: MergeSummary
    """Per-encoder statistics of the rows written."""


class MergeJudge:
    """Applies the merge policy to one parsed line (the stage's workers and ``trace`` share it)."""

    def __init__(self, params: MergeParams) -> None:
        self.params = params
        self.required = frozenset(params.required_keys)
        self.key_fields = params.dedup_key

    def judge(self, line_no: int, row: Any, special: bool, error: LineError | None, display: str) -> Verdict:
        """Judge one line: a usable row carries its natural-key digest."""
        verdict = Verdict()
        params = self.params
        if not check_line(
            verdict,
            line_no,
            row,
            special,
            error,
            display,
            required=self.required,
            on_invalid_row=params.on_invalid_row,
            group="merge",
        ):
            return verdict
        try:
            verdict.digest = key_digest(row, self.key_fields)
        except NonFiniteKeyError as exc:
            return verdict.reject(
                "non_finite_key", f"natural-key field {exc.field_name!r} is not a finite number", row, special=True
            )
        apply_non_finite(verdict, params.non_finite)
        return verdict


#: blake2b personalisation of :func:`source_digest`.
_SOURCE_PERSON: Final = b"corpusprov-src"


def source_digest(row: dict[str, Any]) -> bytes:
    """16-byte digest of a non-empty string ``src_sha256`` (``b""`` otherwise): what
    ``unique_sources`` counts, as ``merge_corpora.py`` counts it."""
    source = row.get("src_sha256")
    if type(source) is not str or not source:
        return b""
    return hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16, person=_SOURCE_PERSON).digest()


class MergeRow:
    """Positions of a usable merge row's result tuple after the digest (:data:`~corpusprov.stages.core.ROW_DIGEST`)."""

    CELL: Final = 1
    """``(encoder, preset)`` for the per-encoder statistics."""
    VMAF: Final = 2
    """The finite ``vmaf_score`` as a float, else ``None``."""
    SOURCE: Final = 3
    """:func:`source_digest` of the row."""


_keep_first_block: Callable[..., tuple[list[tuple[int, int, int]], int]]
try:
    from corpusprov._digests import keep_first_block as _keep_first_block

    #: Whether ``keep: first`` takes a block in one native call (:func:`keep_first_py` otherwise).
    NATIVE_KEEP_FIRST: Final = True
except ImportError:  # pragma: no cover - an install without a C compiler
    NATIVE_KEEP_FIRST: Final = False  # type: ignore[misc]

_merge_rows: Callable[[list[bytes], tuple[object, ...]], NativeAnswers]
try:
    from corpusprov._bytescan import merge_rows as _merge_rows

    #: True when a block's usable rows take the native fast path (``_bytescan.merge_rows``).
    NATIVE_MERGE_ROWS: Final = True
except ImportError:  # pragma: no cover - an install without a C compiler
    NATIVE_MERGE_ROWS: Final = False  # type: ignore[misc]


def native_prepass(params: MergeParams) -> Prepass | None:
    """The native fast path of a block's merge rows (``_bytescan.merge_rows``), or ``None``
    where the install has no C extension.

    For each line it gives what the Python path (parse, :class:`MergeJudge`, ``make_row``)
    gives for a usable row, for the lines it can vouch for
    (:data:`~corpusprov.stages.rowpolicy.NativeAnswers`); property-tested against it line for
    line. It writes the canonical line with its own transcoder (orjson's bytes, without
    building the row's ~60 objects): a real-shaped row costs ~6 us there, against ~14-20 us
    through orjson's loads and dumps and ~25 us on the Python path.
    """
    if not NATIVE_MERGE_ROWS:
        return None
    context = (*native_context(params, params.dedup_key), _SOURCE_PERSON)
    merge_rows = _merge_rows

    def prepass(lines: list[bytes]) -> NativeAnswers:
        return merge_rows(lines, context)

    return prepass


def merge_block_function(params: MergeParams, *, native: bool = True) -> BlockFunction:
    """The per-block work (runs in worker processes): parse, judge, serialise canonically.

    ``native``: usable rows take :func:`native_prepass` where the install built it (the
    output is the same; ``False`` runs the Python path alone, which the tests compare with).

    A usable row's result is ``(digest, (encoder, preset), vmaf, source_digest)``
    (:class:`MergeRow` names the positions); its canonical line travels in the block's joined
    lines, so the main process writes runs of kept rows in one call. See
    :func:`~corpusprov.stages.rowpolicy.judge_block`.
    """
    judge = MergeJudge(params)
    options = params.jsonl
    policy = params.non_finite

    def make_row(verdict: Verdict) -> tuple[bytes, tuple[Any, ...]]:
        out = verdict.row
        vmaf = out.get("vmaf_score")
        line = verdict.line if verdict.line is not None else canonical_line(out, special=verdict.special)
        return line, (
            verdict.digest,
            (str(out.get("encoder")), preset_text(out.get("preset"))),
            float(vmaf) if (type(vmaf) is float or type(vmaf) is int) and math.isfinite(vmaf) else None,
            source_digest(out),
        )

    def run(block: Block) -> BlockResult:
        def judge_line(line_no: int, row: Any, special: bool, error: LineError | None) -> Verdict:
            return judge.judge(line_no, row, special, error, block.display)

        return judge_block(block, options, policy, judge_line, make_row, write=True, prepass=prepass)

    prepass = native_prepass(params) if native else None
    return run


def merge_uses_threads(params: MergeParams) -> bool:
    """Whether merge's blocks run in threads of the main process rather than in worker processes.

    Where the native fast path answers for most rows, yes: it does a block's work with the GIL
    released, and threads spare the pickling of every block and result through pipes (merge
    on 300k real-shaped rows 4.3-4.7 -> 3.5 s). It needs ``non_finite: keep`` to take a row
    with a NaN (a third of real rows); another policy sends those rows to the Python path,
    which holds the GIL, so processes run them.
    """
    return NATIVE_MERGE_ROWS and params.non_finite == "keep"


def merge(
    files: Sequence[InputFile],
    params: MergeParams,
    corpus: StagedFile,
    rejects: StagedFile,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
) -> MergeOutcome:
    """Stream ``files`` into ``corpus`` (winners) and ``rejects``; count every row.

    ``keep: first`` is one pass. ``keep: last`` needs to know the last occurrence before
    writing, so it reads twice and refuses to go on if a shard changed in between. With
    ``jobs > 1`` lines are parsed in worker processes; the bytes written are the same.
    """
    summary = MergeSummary()
    sources = DigestSet()
    inputs = StageInputs(files, params.jsonl, MERGE_COUNTERS, rejects, progress)
    with WorkerPool(jobs, merge_block_function, (params,), threads=merge_uses_threads(params)) as pool:
        if params.keep == "last":
            # keep: last must remember where each key was last seen, and write on a second pass.
            table = DigestTable()
            for counters, result in inputs.rows(pool):
                replaced = table.set(result[ROW_DIGEST], inputs.ordinal)
                if replaced is not None:
                    earlier = inputs.owner(replaced)
                    earlier["duplicates"] += 1
                    earlier["rows_out"] -= 1
                counters["rows_out"] += 1
            _write_last(inputs, pool, table, corpus, summary, sources)
        else:
            # keep: first only asks "seen before?".
            seen = DigestSet()
            keep_first = _keep_first_block if NATIVE_KEEP_FIRST else keep_first_py
            cells = summary.tallies()
            for counters, result in inputs.blocks(pool):
                runs, written = keep_first(seen, sources, cells, result.rows, result.lengths)
                _write_runs(result, runs, corpus)
                counters["rows_out"] += written
                counters["duplicates"] += len(result.rows) - written
    totals = inputs.totals()
    totals["unique_sources"] = len(sources)
    return MergeOutcome(inputs.outcomes(), totals, summary)


def keep_first_py(
    seen: DigestSet,
    sources: DigestSet,
    cells: dict[tuple[str, str], list[Any]],
    rows: Sequence[tuple[Any, ...]],
    lengths: bytes,
) -> tuple[list[tuple[int, int, int]], int]:
    """``keep: first`` over a block's usable rows: each new key's row is kept, tallied in
    ``cells`` (:meth:`MergeSummary.tallies`) and its source added to ``sources``.

    Returns the runs of kept lines, ``(start, end, rows)`` byte offsets into the block's
    joined lines (``lengths``: their lengths, an ``array("I")`` as bytes), and how many rows
    were kept. The reference of the native ``_digests.keep_first_block``, which the stage
    uses where it is built (one call a block instead of a Python loop a row).
    """
    line_lengths = array("I")
    line_lengths.frombytes(lengths)
    kept = [seen.add(row[ROW_DIGEST]) for row in rows]
    return _kept_runs(rows, line_lengths, kept, cells, sources)


def _kept_runs(
    rows: Sequence[tuple[Any, ...]],
    lengths: Sequence[int],
    kept: Sequence[bool],
    cells: dict[tuple[str, str], list[Any]],
    sources: DigestSet,
) -> tuple[list[tuple[int, int, int]], int]:
    """The rows flagged in ``kept``, tallied in ``cells`` and ``sources``, as runs of lines
    ``(start, end, rows)`` in the block's joined lines; and how many rows were kept."""
    tally = MergeSummary.add_tally
    runs: list[tuple[int, int, int]] = []
    start = end = run = written = 0
    for row, length, keep in zip(rows, lengths, kept, strict=True):
        if keep:
            tally(cells, row[MergeRow.CELL], row[MergeRow.VMAF])
            if row[MergeRow.SOURCE]:
                sources.add(row[MergeRow.SOURCE])
            run += 1
        elif run:
            runs.append((start, end, run))
            written += run
            run = 0
        end += length
        if not run:
            start = end
    if run:
        runs.append((start, end, run))
        written += run
    return runs, written


def _write_kept(
    result: BlockResult, kept: Sequence[bool], corpus: StagedFile, summary: MergeSummary, sources: DigestSet
) -> int:
    """Write a block's rows flagged in ``kept`` (runs of lines in one call each) and count them
    in the statistics and the unique sources; return how many were written."""
    runs, written = _kept_runs(result.rows, result.line_lengths(), kept, summary.tallies(), sources)
    _write_runs(result, runs, corpus)
    return written


def _write_runs(result: BlockResult, runs: Sequence[tuple[int, int, int]], corpus: StagedFile) -> None:
    """Write each ``(start, end, rows)`` run of the block's joined lines in one call."""
    view = memoryview(result.lines)
    for start, end, count in runs:
        corpus.write_lines(view[start:end], count)


def _write_last(
    inputs: StageInputs,
    pool: WorkerPool,
    table: DigestTable,
    corpus: StagedFile,
    summary: MergeSummary,
    sources: DigestSet,
) -> None:
    """Second pass for ``keep: last``: write each key's last valid occurrence in input order.

    Usable rows are numbered as :meth:`StageInputs.rows` numbered them.
    """
    ordinal = 0
    for result in inputs.blocks_again(pool):
        kept = [table.get(row[ROW_DIGEST]) == ordinal + index for index, row in enumerate(result.rows)]
        ordinal += len(kept)
        _write_kept(result, kept, corpus, summary, sources)
