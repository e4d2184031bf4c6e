"""The three implementations measured side by side, and one case: a stage over a corpus, repeated.

Runs are interleaved (floor, ours, reference; floor, ours, reference; ...) so a slow
minute on a shared machine lands on all three rather than on one. Every output is deleted
and the page cache flushed between runs, so one run's write-back never bills the next.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpora import Corpus
from measure import Measurement, RunFailedError, Sample, run_probe

__all__ = ["IMPLS", "CaseResult", "MismatchError", "measure_idle", "run_case"]

BENCH = Path(__file__).resolve().parent
IMPLS = ("floor", "ours", "reference")

#: What each idle process imports: the implementation's code, no data.
IDLE_IMPORTS = {
    "ours": "corpusprov.cli,corpusprov.stages.run,corpusprov.stages.merge,corpusprov.stages.aggregate",
    "reference": "reference",
    "floor": "floor",
}

Log = Callable[[str], None]


class MismatchError(Exception):
    """Ours and the reference disagree on how many rows survive: the comparison is void."""


@dataclass
class CaseResult:
    """One stage over one corpus, every implementation measured."""

    name: str
    """Row label in the table (``merge``, ``aggregate``, ``aggregate +2KB``)."""
    stage: str
    """``merge`` or ``aggregate``."""
    corpus: Corpus
    """The input."""
    measurements: dict[str, Measurement] = field(default_factory=dict)
    """Per implementation."""
    counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per implementation: rows in/out (and rows per corpus) of its last run."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Implementations that could not run, and why."""
    warnings: list[str] = field(default_factory=list)
    """Disagreements short of a row-count mismatch."""
    slow_path_share: float | None = None
    """Fraction of sampled lines the parser answers on its careful (stdlib) path."""
    slow_path_sampled: int = 0
    """How many lines that fraction was measured over."""
    native_path_share: float | None = None
    """Fraction of the same lines the stage's native fast path answers for (``None``: not probed)."""

    @property
    def unique_keys(self) -> int:
        """Unique natural keys among usable rows: the rows ours kept."""
        return int(self.counters["ours"]["rows_out"])

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "stage": self.stage,
            "input": {
                "folder": self.corpus.folder.name,
                "rows": self.corpus.rows,
                "bytes": self.corpus.bytes,
                "files": list(self.corpus.files),
                "extra_width": self.corpus.extra_width,
            },
            "unique_keys": self.unique_keys,
            "measurements": {impl: item.to_dict() for impl, item in self.measurements.items()},
            "counters": self.counters,
            "skipped": self.skipped,
            "warnings": self.warnings,
            "slow_path_share": self.slow_path_share,
            "native_path_share": self.native_path_share,
            "slow_path_sampled": self.slow_path_sampled,
        }


def command(impl: str, stage: str, corpus: Corpus, output: Path, params: Path) -> list[str]:
    """The probe target for ``impl`` running ``stage`` over ``corpus``."""
    if impl == "floor":
        return [str(BENCH / "floor.py"), str(corpus.folder)]
    tail = [stage, str(corpus.folder), "--output", str(output), "--params", str(params)]
    if impl == "ours":
        return ["-m", "corpusprov", *tail]
    return [str(BENCH / "reference.py"), *tail]


def counters_of(impl: str, sample: Sample, output: Path) -> dict[str, Any]:
    """Rows in/out as the run reported them: ours in its manifest, the others on stdout."""
    if impl != "ours":
        return dict(json.loads(sample.stdout.strip().splitlines()[-1]))
    manifest = json.loads(output.with_name(output.name + ".manifest.json").read_text(encoding="utf-8"))
    counters = manifest.get("counters", {})
    result: dict[str, Any] = {"rows_in": counters.get("rows_in"), "rows_out": counters.get("rows_out")}
    conversions = manifest.get("scale_conversions")
    if conversions:
        result["rows_by_corpus"] = {item["corpus"]: item["rows_out"] for item in conversions}
    return result


def _clear(folder: Path) -> None:
    """Delete a run's outputs and push any dirty pages out before the next run starts."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.sync()


def measure_idle(workdir: Path, repeat: int) -> dict[str, Measurement]:
    """Peak RSS of each implementation's process with its code imported and no data read."""
    return {
        impl: Measurement(tuple(run_probe(["--import", modules], cwd=workdir) for _ in range(repeat)))
        for impl, modules in IDLE_IMPORTS.items()
    }


def _check_agreement(case: CaseResult) -> None:
    ours = case.counters.get("ours")
    reference = case.counters.get("reference")
    if ours is None or reference is None:
        return
    if ours["rows_out"] != reference["rows_out"] or ours["rows_in"] != reference["rows_in"]:
        raise MismatchError(
            f"{case.name}: ours kept {ours['rows_out']} of {ours['rows_in']} rows, the reference "
            f"{reference['rows_out']} of {reference['rows_in']}; the reference no longer implements "
            "the same semantics (did params.yaml or the stage change?)"
        )
    if "rows_by_corpus" in ours and ours["rows_by_corpus"] != reference.get("rows_by_corpus"):
        case.warnings.append(
            f"rows per corpus differ: ours {ours['rows_by_corpus']}, "
            f"reference {reference.get('rows_by_corpus')} (resolver semantics drifted?)"
        )


def run_case(
    case: CaseResult,
    *,
    workdir: Path,
    params: Path,
    repeat: int,
    log: Log,
    memory_limit: int | None = None,
    impls: tuple[str, ...] = IMPLS,
) -> CaseResult:
    """Measure every implementation ``repeat`` times over ``case.corpus``, interleaved."""
    out_dir = workdir / "out"
    _clear(out_dir)
    run_probe(command("floor", case.stage, case.corpus, out_dir, params), cwd=workdir)  # warm the page cache
    samples: dict[str, list[Sample]] = {impl: [] for impl in impls}
    for round_no in range(1, repeat + 1):
        for impl in impls:
            if impl in case.skipped:
                continue
            output = out_dir / f"{impl}-{case.stage}.jsonl"
            try:
                sample = run_probe(
                    command(impl, case.stage, case.corpus, output, params),
                    cwd=workdir,
                    memory_limit=memory_limit if impl == "reference" else None,
                )
            except RunFailedError as exc:
                if impl != "reference":
                    raise
                # Most likely MemoryError under the limit: the reference holds every row.
                case.skipped[impl] = f"failed: {exc}"
                log(f"  {case.name:17} {impl:9} failed ({exc}); skipped from here on")
                _clear(out_dir)
                continue
            case.counters[impl] = counters_of(impl, sample, output)
            samples[impl].append(sample)
            _clear(out_dir)
            log(
                f"  {case.name:17} {impl:9} run {round_no}/{repeat}: {sample.wall_s:8.2f} s  "
                f"{sample.peak_bytes / 2**20:8.1f} MiB"
            )
    case.measurements = {impl: Measurement(tuple(runs)) for impl, runs in samples.items() if runs}
    _check_agreement(case)
    return case
