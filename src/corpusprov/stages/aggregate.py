"""The aggregate core: MOS corpora onto one 0-100 axis, de-duplicated across corpora.

``aggregate_corpora.py`` is the reference for which rows come out (same winners, labels,
values and fields); the README's migration table lists where we differ on purpose.
Each input is read once. Block threads (or worker processes, see :func:`aggregate_uses_threads`)
parse and judge the rows, count what each block holds and serialise its usable rows' output
lines, handed back as one buffer per block; the main thread spills each buffer in one write
(:class:`~corpusprov.stages.spill.Spill`) and offers the block's rows to the :class:`Resolver`
(per unique key only what the rule needs: the winner, its std-dev, corpus and sort key). The
winners are then copied from the spill in sorted order. Memory grows
with unique keys (plus 12 bytes per usable row for the spill index), never with row width.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, islice
from typing import Any, Final

from corpusprov.io.canonical import canonical_line
from corpusprov.io.inputs import InputFile
from corpusprov.io.jsonl import Block, LineError
from corpusprov.io.outputs import StagedFile
from corpusprov.params.stages import AggregateParams
from corpusprov.stages.core import InputOutcome, StageInputs
from corpusprov.stages.mosrow import AggregateJudge, native_aggregate_context
from corpusprov.stages.resolver import Resolver
from corpusprov.stages.rowpolicy import (
    INVALID_ROW_REASONS,
    BlockResult,
    NativeAnswers,
    Prepass,
    Verdict,
    judge_block,
)
from corpusprov.stages.spill import Spill, sorted_ordinals
from corpusprov.stages.summary import AggregateSummary
from corpusprov.stages.workers import BlockFunction, ProgressCallback, WorkerPool

__all__ = [
    "AGGREGATE_ACCOUNTING",
    "AGGREGATE_COUNTERS",
    "NATIVE_AGGREGATE_ROWS",
    "AggregateOutcome",
    "AggregatePrepass",
    "aggregate",
    "aggregate_uses_threads",
    "native_prepass",
]

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


_aggregate_rows: Callable[[list[bytes], tuple[object, ...], str | None], NativeAnswers] | None
try:
    from corpusprov._bytescan import aggregate_rows as _aggregate_rows

    #: True when a block's usable rows take the native fast path (``_bytescan.aggregate_rows``).
    NATIVE_AGGREGATE_ROWS: Final = True
except ImportError:  # pragma: no cover - an install without a C compiler
    _aggregate_rows = None
    NATIVE_AGGREGATE_ROWS: Final = False  # type: ignore[misc]


#: ``(lines of a block, the label override of its shard) ->``
#: :data:`~corpusprov.stages.rowpolicy.NativeAnswers`: the aggregate's native fast path, see
#: :func:`native_prepass`.
AggregatePrepass = Callable[[list[bytes], str | None], NativeAnswers]


def native_prepass(params: AggregateParams) -> AggregatePrepass | None:
    """The native fast path of a block's aggregate rows (``_bytescan.aggregate_rows``), or
    ``None`` where the install has no C extension or the output row is ``passthrough``.

    For each line it gives what the Python path (parse, :class:`AggregateJudge`, ``make_row``)
    gives for a usable row, for the lines it can vouch for
    (:data:`~corpusprov.stages.rowpolicy.NativeAnswers`); property-tested against it block for block.
    """
    if _aggregate_rows is None or params.output_row != "unified":
        return None
    context = native_aggregate_context(params)
    aggregate_rows = _aggregate_rows

    def prepass(lines: list[bytes], override: str | None) -> NativeAnswers:
        return aggregate_rows(lines, context, override)

    return prepass


def aggregate_block_function(
    params: AggregateParams, overrides: dict[str, str], *, native: bool = True
) -> BlockFunction:
    """The per-block work (in worker processes, or threads: see :func:`aggregate_uses_threads`):
    parse, judge, build the output lines.

    A usable row's result is an :data:`~corpusprov.stages.resolver.OFFERED_ROW` tuple; its
    output line travels in the block's joined lines, so the main process spills a block in
    one write. ``numbers_from_strings`` is counted here. See
    :func:`~corpusprov.stages.rowpolicy.judge_block`. ``native``: usable rows take
    :func:`native_prepass` where there is one (the same output; ``False`` runs the Python path
    alone, which the tests compare with).
    """
    native_rows = native_prepass(params) if native else None
    judge = AggregateJudge(params)
    options = params.jsonl
    policy = params.non_finite
    passthrough = params.output_row == "passthrough"

    def run(block: Block) -> BlockResult:
        override = overrides.get(block.display)
        from_strings = 0  # per call: threads may share this function

        def judge_line(line_no: int, row: Any, special: bool, error: LineError | None) -> Verdict:
            return judge.judge(line_no, row, special, error, block.display, override)

        def make_row(verdict: Verdict) -> tuple[bytes, tuple[Any, ...]]:
            nonlocal from_strings
            label = verdict.label or ""
            out = verdict.row
            if passthrough:
                out = dict(out)
                out["mos"] = verdict.unified
                out["mos_native"] = verdict.native
                out["mos_native_scale"] = params.scales[label].label
                out["corpus_source"] = label
            from_strings += verdict.from_strings
            return canonical_line(out, special=verdict.special), (
                verdict.digest,
                label,
                verdict.std,
                judge.sort_key(out, label),
                verdict.unified,
                verdict.native,
                verdict.dropped,
            )

        prepass: Prepass | None = None
        if native_rows is not None:
            rows_of = native_rows

            def prepass(lines: list[bytes]) -> NativeAnswers:
                return rows_of(lines, override)

        result = judge_block(block, options, policy, judge_line, make_row, prepass=prepass)
        result.tallies["numbers_from_strings"] = from_strings
        return result

    return run


def aggregate_uses_threads(params: AggregateParams) -> bool:
    """Whether the blocks run in threads of the main process rather than in worker processes.

    Where the native fast path answers for most rows, yes (as for merge: see
    :func:`~corpusprov.stages.merge.merge_uses_threads`): it does a block's per-line work with
    the GIL released, and threads spare the pickling of every block and result through pipes.
    It writes unified rows only, and takes a row whose unified fields hold a NaN (a third of
    real rows: ``mos_std_dev``) only with ``non_finite: keep``; otherwise processes run them.
    """
    return NATIVE_AGGREGATE_ROWS and params.output_row == "unified" and params.non_finite == "keep"


def aggregate(
    files: Sequence[InputFile],
    params: AggregateParams,
    corpus: StagedFile,
    rejects: StagedFile,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
) -> AggregateOutcome:
    """Read ``files`` once: resolve duplicates, spill unified rows, write the winners sorted."""
    resolver = Resolver()
    inputs = StageInputs(files, params.jsonl, AGGREGATE_COUNTERS, rejects, progress)
    overrides = _overrides_for(files, params)
    offsets = array("q")
    lengths = array("I")
    spill = Spill(corpus.target, corpus.display)  # creates its file last: nothing to clean if it raises
    try:
        threads = aggregate_uses_threads(params)
        with WorkerPool(jobs, aggregate_block_function, (params, overrides), threads=threads) as pool:
            for counters, result in inputs.blocks(pool):
                block_lengths = result.line_lengths()
                offsets.extend(islice(accumulate(block_lengths, initial=spill.write(result.lines)), len(block_lengths)))
                lengths.extend(block_lengths)
                offers = resolver.offer_block(result.rows, inputs.ordinal)
                counters["same_corpus_duplicates"] += offers.same_corpus
                counters["cross_corpus_duplicates"] += offers.lost
                for rival in offers.displaced:
                    inputs.owner(rival)["cross_corpus_duplicates"] += 1
        summary, rows_by_corpus = _write_sorted(params, resolver, spill, offsets, lengths, corpus)
    finally:
        spill.close()
    inputs.add_by_input("rows_out", resolver.winner)
    inputs.add_by_input("fields_dropped_rows", compress(resolver.winner, resolver.winner_dropped))
    applied = {file.display: overrides[file.display] for file in files if file.display in overrides}
    return AggregateOutcome(inputs.outcomes(), inputs.totals(), rows_by_corpus, applied, summary)


def _overrides_for(files: Sequence[InputFile], params: AggregateParams) -> dict[str, str]:
    """Label override per input file; an override may name the file or its folder argument."""
    result: dict[str, str] = {}
    for file in files:
        label = params.overrides.get(file.display, params.overrides.get(file.arg))
        if label is not None:
            result[file.display] = label
    return result


def _write_sorted(
    params: AggregateParams,
    resolver: Resolver,
    spill: Spill,
    offsets: array[int],
    lengths: array[int],
    corpus: StagedFile,
) -> tuple[AggregateSummary, dict[str, int]]:
    """Copy the winners' unified lines from the spill, sorted; tally what was written."""
    summary = AggregateSummary({label: (scale.native_min, scale.native_max) for label, scale in params.scales.items()})
    labels = resolver.labels()
    order = array("q")
    order.frombytes(sorted_ordinals(resolver.winner_sort, resolver.winner))
    resolver.winner_sort.clear()
    rows_by_corpus: dict[str, int] = {}
    corpus_of = resolver.winner_corpus
    # Each corpus's winners in slot order, the corpora in the order their first winner holds.
    first_slots = []
    for corpus_id, label in enumerate(labels):
        with contextlib.suppress(ValueError):
            first_slots.append((corpus_of.index(corpus_id), corpus_id, label))
    for _, corpus_id, label in sorted(first_slots):
        rows_by_corpus[label] = summary.add_group(
            label, resolver.winner_unified, resolver.winner_native, corpus_of, corpus_id
        )
    for lines, count in spill.lines_in_order(offsets, lengths, order):
        corpus.write_lines(lines, count)
    return summary, dict(sorted(rows_by_corpus.items()))
