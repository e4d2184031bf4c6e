"""Run a stage end to end: resolve inputs, load params, stream, write outputs and manifest together."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from corpusprov import __version__
from corpusprov.errors import InputError, UsageError
from corpusprov.io.canonical import SERIALIZATION
from corpusprov.io.inputs import (
    FolderArg,
    InputFile,
    check_inside_repository,
    check_outputs,
    display_path,
    dvc_dir_md5,
    resolve_inputs,
)
from corpusprov.io.outputs import OutputSet, StagedFile
from corpusprov.params.load import ParamsFile, load_params
from corpusprov.params.scales import aggregate_params, check_overrides
from corpusprov.params.stages import merge_params
from corpusprov.record.manifest import InputRecord, Manifest, OutputEntry, manifest_bytes
from corpusprov.record.provenance import git_state, iso_utc, run_environment, utc_now
from corpusprov.record.redact import redact_argv
from corpusprov.record.upstream import find_upstream
from corpusprov.stages.core import InputOutcome
from corpusprov.stages.merge import MERGE_ACCOUNTING, merge
from corpusprov.stages.summary import stage_metrics
from corpusprov.stages.workers import ProgressCallback, choose_jobs

__all__ = [
    "StageReport",
    "StageRequest",
    "default_manifest_path",
    "default_rejects_path",
    "metrics_bytes",
    "run_aggregate",
    "run_merge",
]


@dataclass(frozen=True)
class StageRequest:
    """What the command line asked a stage to do."""

    inputs: tuple[str, ...]
    """INPUT arguments: files or folders."""
    output: Path
    """The corpus JSONL to write."""
    params_path: Path = Path("params.yaml")
    """The params file."""
    params_explicit: bool = False
    """Whether ``--params`` was given (then the file must exist)."""
    manifest_out: Path | None = None
    """Manifest path; default ``<output>.manifest.json``."""
    rejects_out: Path | None = None
    """Rejects JSONL path; default ``<output stem>.rejects.jsonl``."""
    metrics_out: Path | None = None
    """Scalar metrics JSON for ``dvc exp show``; none by default."""
    plots_dir: Path | None = None
    """Folder for pre-binned plot data (``dvc plots``); none by default."""
    argv: tuple[str, ...] = ()
    """The command line as typed (program name first)."""
    allow_outside_repo: bool = False
    """Allow inputs, outputs and params outside the working directory (the repository root)."""
    jobs: int | None = None
    """Worker processes for parsing; ``None`` = all cores for large inputs, else one."""
    progress: Callable[[int, int, int], None] | None = None
    """Called with ``(bytes, rows, total_bytes)`` as blocks of input are handed on."""


@dataclass(frozen=True)
class StageReport:
    """What a stage run produced."""

    manifest: Manifest
    """The manifest written."""
    manifest_path: str
    """Where it was written (repo-relative)."""


def default_manifest_path(output: Path) -> Path:
    """``<output>.manifest.json``."""
    return output.with_name(output.name + ".manifest.json")


def default_rejects_path(output: Path) -> Path:
    """``<output without .jsonl>.rejects.jsonl``."""
    stem = output.name[: -len(".jsonl")] if output.name.endswith(".jsonl") else output.name
    return output.with_name(stem + ".rejects.jsonl")


def metrics_bytes(counters: Any) -> bytes:
    """Scalar metrics as ``dvc metrics``/``dvc exp show`` read them."""
    return orjson.dumps(counters, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def _folder_records(folders: Sequence[FolderArg], records: Sequence[InputRecord]) -> tuple[dict[str, Any], ...]:
    by_path = {record.path: record for record in records}
    result = []
    for folder in folders:
        members = [by_path[f"{folder.display}/{name}" if folder.display != "." else name] for name in folder.files]
        # A folder member's relpath is its name; DVC hashes the manifest beside it into the folder too.
        entries = [entry for record in members for entry in record.dvc_listing()]
        result.append({"path": folder.display, "files": list(folder.files), "dvc_dir_md5": dvc_dir_md5(entries)})
    return tuple(result)


def _argv(argv: Sequence[str]) -> list[str]:
    """argv as the manifest records it: repo paths relative, credentials and home folders redacted."""
    recorded = []
    home = str(Path.home())
    for arg in argv:
        if arg.startswith("/"):
            relative = display_path(Path(arg)) or "."
            # Never an absolute path: inside the repo it is repo-relative; outside it (only with
            # --allow-outside-repo) it is ~/... under the home folder, else relative (../).
            if not relative.startswith("../") or not (arg == home or arg.startswith(home + "/")):
                arg = relative
        recorded.append(arg)
    return redact_argv(recorded)


def _command(request: StageRequest, paths: dict[str, Path], params: ParamsFile) -> dict[str, Any]:
    args: dict[str, Any] = {
        "inputs": [display_path(Path(arg)) for arg in request.inputs],
        "output": display_path(request.output),
        "params": params.display,
    }
    for name, path in paths.items():
        args[name] = display_path(path)
    return {"argv": _argv(request.argv), "args": args}


def _check_inside(
    request: StageRequest, files: Sequence[InputFile], targets: dict[str, Path], params: ParamsFile
) -> None:
    """Refuse paths outside the repository: the manifest records repo-relative paths only."""
    if request.allow_outside_repo:
        return
    named = [(item.path, item.display, "input") for item in files]
    named += [(path, display_path(path), name.replace("_", "-")) for name, path in targets.items()]
    if params.display is not None:
        named.append((request.params_path, params.display, "params"))
    check_inside_repository(named)


@dataclass(frozen=True)
class _BodyResult:
    """What a stage core hands back to the runner."""

    records: list[InputRecord]
    counters: dict[str, int]
    extra: dict[str, Any]
    metrics: dict[str, Any]
    """Headline figures beyond the four every stage reports (see :func:`~corpusprov.stages.summary.stage_metrics`)."""
    plots: dict[str, list[dict[str, Any]]]


Body = Callable[[Sequence[InputFile], StagedFile, StagedFile], _BodyResult]


def _present_inputs(inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """``on_missing_input: skip``: the arguments that exist, and the missing ones (as displayed)."""
    present: list[str] = []
    skipped: list[str] = []
    for arg in inputs:
        path = Path(arg)
        if path.exists() or path.is_symlink():  # a dangling link is an error, not a skip
            present.append(arg)
        else:
            skipped.append(display_path(path))
    if not present:
        raise InputError(
            f"none of the {len(inputs)} input(s) exists",
            path=skipped[0],
            fix="check the paths, or run `dvc pull` / `dvc checkout`; an empty corpus is never written",
        )
    return present, skipped


def _run(
    kind: str,
    request: StageRequest,
    params: ParamsFile,
    policy: dict[str, Any],
    accounting: dict[str, Any],
    body: Body,
    *,
    skip_missing: bool = False,
) -> StageReport:
    started = utc_now()
    clock = time.monotonic()
    inputs, skipped = _present_inputs(request.inputs) if skip_missing else (list(request.inputs), [])
    files, folders = resolve_inputs(inputs)
    manifest_path = request.manifest_out or default_manifest_path(request.output)
    rejects_path = request.rejects_out or default_rejects_path(request.output)
    targets = {"output": request.output, "rejects_out": rejects_path, "manifest_out": manifest_path}
    if request.metrics_out is not None:
        targets["metrics_out"] = request.metrics_out
    plot_names = {"merge": ("rows_by_encoder_preset",), "aggregate": ("mos_unified_hist", "mos_native_hist")}[kind]
    if request.plots_dir is not None:
        for name in plot_names:
            targets[f"plot_{name}"] = request.plots_dir / f"{name}.json"
    check_outputs(list(targets.values()), files, folders)
    _check_inside(request, files, targets, params)
    # Read before the rows: the manifests beside the inputs, as this build found them.
    upstream = {item.display: link for item in files if (link := find_upstream(item.path, item.display))}
    with OutputSet() as outputs:
        corpus = outputs.stage(request.output, display_path(request.output), "corpus")
        rejects = outputs.stage(rejects_path, display_path(rejects_path), "rejects")
        result = body(files, corpus, rejects)
        counters, extra = result.counters, result.extra
        records = [replace(record, upstream=upstream.get(record.path)) for record in result.records]
        if request.metrics_out is not None:
            metrics = outputs.stage(request.metrics_out, display_path(request.metrics_out), "metrics")
            metrics.write_bytes(metrics_bytes(stage_metrics(kind, counters, accounting, result.metrics, records)))
        if request.plots_dir is not None:
            for name in plot_names:
                target = targets[f"plot_{name}"]
                plot = outputs.stage(target, display_path(target), "plot")
                plot.write_bytes(metrics_bytes(result.plots[name]))
        written = outputs.records()
        manifest_file = outputs.stage(manifest_path, display_path(manifest_path), "manifest")
        finished = utc_now()
        provenance = {
            "started_at_utc": iso_utc(started),
            "finished_at_utc": iso_utc(finished),
            "duration_s": round(time.monotonic() - clock, 6),
            "git": git_state(),
            **run_environment(),
        }
        manifest = Manifest(
            kind=kind,
            tool={"name": "corpusprov", "version": __version__},
            command=_command(request, {k: v for k, v in targets.items() if k != "output"}, params),
            params={
                "path": params.display,
                "sha256": params.digest.sha256 if params.digest else None,
                "md5": params.digest.md5 if params.digest else None,
                "group": kind,
                "values": params.group_values(kind),
            },
            policy=policy,
            serialization=dict(SERIALIZATION),
            inputs=tuple(records),
            input_folders=_folder_records(folders, records),
            outputs=tuple(
                OutputEntry(
                    record.role, record.path, record.digest.bytes, record.digest.sha256, record.digest.md5, record.rows
                )
                for record in written
            ),
            counters=counters,
            accounting=accounting,
            provenance=provenance,
            extra={**extra, "skipped_inputs": skipped} if skip_missing else extra,
        )
        manifest_file.write_bytes(manifest_bytes(manifest))
        outputs.commit()
    return StageReport(manifest, display_path(manifest_path))


def _load(request: StageRequest) -> ParamsFile:
    if not request.inputs:
        raise UsageError("no inputs given", fix="pass at least one JSONL file or folder")
    return load_params(request.params_path, display_path(request.params_path), required=request.params_explicit)


def _input_bytes(files: Sequence[InputFile]) -> int:
    total = 0
    for item in files:
        with contextlib.suppress(OSError):
            total += item.path.stat().st_size
    return total


def _execution(
    request: StageRequest, files: Sequence[InputFile], passes: int = 1
) -> tuple[int, ProgressCallback | None]:
    """Worker count and progress reporter for a run, from one look at the input sizes."""
    size = _input_bytes(files)
    jobs = choose_jobs(request.jobs, size)
    callback = request.progress
    if callback is None:
        return jobs, None
    total = size * passes

    def report(nbytes: int, rows: int) -> None:
        callback(nbytes, rows, total)

    return jobs, report


def _records(inputs: Sequence[InputOutcome], overrides: dict[str, str] | None = None) -> list[InputRecord]:
    """Per-input manifest records from a stage's outcome."""
    return [
        InputRecord(
            item.file.display,
            item.file.arg,
            item.file.relpath,
            item.digest.bytes,
            item.digest.sha256,
            item.digest.md5,
            item.counters["rows_in"],
            item.counters,
            (overrides or {}).get(item.file.display),
        )
        for item in inputs
    ]


def run_merge(request: StageRequest) -> StageReport:
    """``corpusprov merge``: validate, de-duplicate and write the encode-grid corpus."""
    params_file = _load(request)
    params = merge_params(params_file)

    def body(files: Sequence[InputFile], corpus: StagedFile, rejects: StagedFile) -> _BodyResult:
        jobs, progress = _execution(request, files, 2 if params.keep == "last" else 1)
        outcome = merge(files, params, corpus, rejects, jobs=jobs, progress=progress)
        headline = {"sources": outcome.counters["unique_sources"], "vmaf": outcome.summary.vmaf_overall()}
        return _BodyResult(
            _records(outcome.inputs),
            outcome.counters,
            {"breakdown": outcome.summary.metrics()},
            headline,
            outcome.summary.plots(),
        )

    return _run("merge", request, params_file, params.policy(), MERGE_ACCOUNTING, body)


def run_aggregate(request: StageRequest) -> StageReport:
    """``corpusprov aggregate``: normalise MOS corpora onto 0-100 and de-duplicate across corpora."""
    from corpusprov.stages.aggregate import AGGREGATE_ACCOUNTING, aggregate

    params_file = _load(request)
    params = aggregate_params(params_file)

    def body(files: Sequence[InputFile], corpus: StagedFile, rejects: StagedFile) -> _BodyResult:
        names = {file.display for file in files} | {file.arg for file in files}
        check_overrides(params, names, params_file)
        jobs, progress = _execution(request, files)
        outcome = aggregate(files, params, corpus, rejects, jobs=jobs, progress=progress)
        records = _records(outcome.inputs, outcome.overrides)
        conversions = [
            {**params.scales[label].to_dict(), "rows_out": rows} for label, rows in outcome.rows_by_corpus.items()
        ]
        extra = {
            "scale_conversions": conversions,
            "overrides": [{"input": path, "label": label} for path, label in sorted(outcome.overrides.items())],
            "breakdown": outcome.summary.metrics(),
        }
        headline = {"corpora": len(outcome.rows_by_corpus), "mean": outcome.summary.mos_overall()}
        return _BodyResult(records, outcome.counters, extra, headline, outcome.summary.plots())

    return _run(
        "aggregate",
        request,
        params_file,
        params.policy(),
        AGGREGATE_ACCOUNTING,
        body,
        skip_missing=params.on_missing_input == "skip",
    )
