"""trace: every input occurrence of a dedup key, which one won, and the rule that decided."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from corpusprov.errors import UsageError
from corpusprov.io.inputs import resolves_inside
from corpusprov.io.jsonl import JsonlOptions, JsonlReader, LineError, is_blank
from corpusprov.params.load import ParamsFile, params_from_values
from corpusprov.params.stages import merge_params
from corpusprov.prove.dvcfiles import plan_stages
from corpusprov.record.manifest import InputRecord, Manifest, load_manifest
from corpusprov.stages.keys import NonFiniteKeyError, key_part
from corpusprov.stages.rowpolicy import Verdict

__all__ = ["Occurrence", "TraceResult", "parse_key_values", "trace"]


@dataclass(frozen=True)
class Occurrence:
    """One input row carrying the traced key."""

    path: str
    """Shard it is in."""
    line: int
    """Line number."""
    fields: dict[str, Any]
    """The fields that decided (key fields, corpus, std-dev, ...)."""
    verdict: str
    """``winner``, or why it was not written."""
    group: int
    """Which distinct key it belongs to (a partial key may match several)."""


@dataclass(frozen=True)
class TraceResult:
    """All occurrences and the rule."""

    stage: str
    """The stage traced."""
    kind: str
    """``merge`` or ``aggregate``."""
    key: dict[str, Any]
    """The key asked for."""
    rule: str
    """The dedup rule in force (from the manifest's recorded params)."""
    occurrences: tuple[Occurrence, ...]
    """Every occurrence, in input order."""
    notes: tuple[str, ...] = ()
    """Warnings (inputs changed since the manifest was written, ...)."""


def parse_key_values(pairs: Sequence[str]) -> dict[str, Any]:
    """``crf=23 preset=medium`` -> ``{"crf": 23, "preset": "medium"}`` (JSON values, else strings)."""
    key: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            shown = pair if len(pair) <= 80 else pair[:77] + "..."
            raise UsageError(
                f"cannot read {shown!r} as KEY=VALUE",
                fix="write e.g. src_sha256=ab12... crf=23 preset=medium (quote a JSON string: crf='\"23\"')",
            )
        try:
            value: Any = json.loads(raw)
        except RecursionError:
            raise UsageError(
                f"the value of {name!r} is nested too deeply to be a key", fix="trace a key value as the rows spell it"
            ) from None
        except ValueError:
            value = raw
        try:
            key_part(value)
        except NonFiniteKeyError:
            raise UsageError(
                f"the value of {name!r} holds NaN or an infinity: such a value is never a key",
                fix="non-finite key values are rejected as non_finite_key (see the rejects file); trace a finite value",
            ) from None
        key[name] = value
    if not key:
        raise UsageError("no KEY=VALUE given", fix="name the dedup key fields to trace")
    return key


def _matches(row: Any, wanted: dict[str, bytes]) -> bool:
    if not isinstance(row, dict):
        return False
    for name, part in wanted.items():
        if name not in row:
            return False
        try:
            if key_part(row[name]) != part:
                return False
        except NonFiniteKeyError:
            return False
    return True


def trace(root: Path, stage: str, pairs: Sequence[str]) -> TraceResult:
    """Trace a key through the inputs recorded in ``stage``'s manifest."""
    plans, _ = plan_stages(root, (stage,))
    if not plans:
        raise UsageError(
            f"stage {stage!r} writes no manifest",
            path="dvc.yaml",
            fix="trace a stage that runs corpusprov merge or aggregate",
        )
    manifest_path = plans[0].manifests[0]
    if not resolves_inside(root / manifest_path, root):
        raise UsageError(
            "the stage's manifest is a symbolic link leading outside the repository",
            path=manifest_path,
            fix="restore it (`dvc checkout`)",
        )
    manifest, _ = load_manifest(root / manifest_path, manifest_path)
    key = parse_key_values(pairs)
    wanted = {name: key_part(value) for name, value in key.items()}
    params_file = params_from_values(manifest.kind, manifest.params["values"], manifest.params["path"])
    notes: list[str] = []
    if manifest.kind == "merge":
        occurrences, rule = _trace_merge(root, manifest, params_file, key, wanted, notes)
    else:
        occurrences, rule = _trace_aggregate(root, manifest, params_file, key, wanted, notes)
    return TraceResult(stage, manifest.kind, key, rule, tuple(occurrences), tuple(notes))


Found = list[tuple[str, int, Any, Verdict]]


def _scan(
    root: Path,
    manifest: Manifest,
    options: JsonlOptions,
    wanted: dict[str, bytes],
    judge_line: Callable[[InputRecord, int, Any, bool, LineError | None], Verdict],
    notes: list[str],
) -> Found:
    """Every recorded input row carrying the key, judged; notes each input that changed since."""
    found: Found = []
    for record in manifest.inputs:
        if not resolves_inside(root / record.path, root):
            raise UsageError(
                "recorded input leads outside the repository (a symbolic link?): trace does not read it",
                path=record.path,
                fix="restore the shard inside the repository (`dvc checkout`)",
            )
        reader = JsonlReader(root / record.path, record.path, options)
        for line_no, row, special, error in reader:
            if (error is not None and is_blank(error)) or not _matches(row, wanted):
                continue
            found.append((record.path, line_no, row, judge_line(record, line_no, row, special, error)))
        if reader.digest.sha256 != record.sha256:
            notes.append(f"{record.path} changed since the manifest was written: the trace shows the bytes on disk now")
    return found


def _trace_merge(
    root: Path,
    manifest: Manifest,
    params_file: ParamsFile,
    key: dict[str, Any],
    wanted: dict[str, bytes],
    notes: list[str],
) -> tuple[list[Occurrence], str]:
    from corpusprov.stages.merge import MergeJudge

    params = replace(merge_params(params_file), on_invalid_row="reject")
    unknown = [name for name in key if name not in params.dedup_key]
    if unknown:
        raise UsageError(
            f"{unknown[0]!r} is not a field of the natural key", fix=f"the key is {', '.join(params.dedup_key)}"
        )
    judge = MergeJudge(params)
    found = _scan(
        root,
        manifest,
        params.jsonl,
        wanted,
        lambda record, line_no, row, special, error: judge.judge(line_no, row, special, error, record.path),
        notes,
    )
    groups: dict[bytes, int] = {}
    winners: dict[bytes, int] = {}
    for index, (_, _, _, verdict) in enumerate(found):
        if verdict.reason is None:
            groups.setdefault(verdict.digest, len(groups))
            if params.keep == "last" or verdict.digest not in winners:
                winners[verdict.digest] = index
    occurrences = []
    for index, (path, line_no, row, verdict) in enumerate(found):
        shown = {name: row.get(name) for name in (*params.dedup_key, "run_id", "timestamp") if name in row}
        if verdict.reason is not None:
            text, group = f"rejected ({verdict.reason}: {verdict.detail})", -1
        elif winners[verdict.digest] == index:
            text, group = "winner", groups[verdict.digest]
        else:
            win_path, win_line = found[winners[verdict.digest]][:2]
            text = f"duplicate of {win_path}:{win_line}"
            group = groups[verdict.digest]
        occurrences.append(Occurrence(path, line_no, shown, text, group))
    rule = (
        f"merge dedup.keep: {params.keep} - the {params.keep} valid occurrence of each natural key "
        f"({', '.join(params.dedup_key)}) in input order wins; numbers compare by value"
    )
    return occurrences, rule


def _trace_aggregate(
    root: Path,
    manifest: Manifest,
    params_file: ParamsFile,
    key: dict[str, Any],
    wanted: dict[str, bytes],
    notes: list[str],
) -> tuple[list[Occurrence], str]:
    from corpusprov.params.scales import aggregate_params
    from corpusprov.stages.mosrow import AggregateJudge
    from corpusprov.stages.resolver import Resolver

    params = replace(aggregate_params(params_file), on_invalid_row="reject")
    # The dedup key, and the (src, corpus_source) fallback for rows without it, as merge refuses
    # a field outside its natural key: anything else would match rows that are not one key.
    traceable = (*params.dedup_key, "src", "corpus_source")
    unknown = [name for name in key if name not in traceable]
    if unknown:
        raise UsageError(
            f"{unknown[0]!r} is not a field of the dedup key",
            fix=f"the key is {', '.join(params.dedup_key)} (rows without it: src, corpus_source)",
        )
    judge = AggregateJudge(params)
    found = _scan(
        root,
        manifest,
        params.jsonl,
        wanted,
        lambda record, line_no, row, special, error: judge.judge(
            line_no, row, special, error, record.path, record.label_override
        ),
        notes,
    )
    # The stage's own resolver decides; this loop only puts its decisions into words.
    resolver = Resolver()
    verdicts: list[str] = [""] * len(found)
    groups: dict[bytes, int] = {}
    for index, (path, line_no, _, verdict) in enumerate(found):
        if verdict.reason is not None:
            verdicts[index] = f"rejected ({verdict.reason}: {verdict.detail})"
            continue
        groups.setdefault(verdict.digest, len(groups))
        decision = resolver.offer(verdict.digest, verdict.label or "", verdict.std, index)
        rival = found[decision.rival] if decision.rival >= 0 else None
        if decision.outcome == "new":
            verdicts[index] = "winner"
        elif decision.outcome == "same_corpus" and rival is not None:
            verdicts[index] = (
                f"same-corpus duplicate of {rival[0]}:{rival[1]} (same corpus "
                f"{verdict.label} as the current winner: dropped)"
            )
        elif decision.outcome == "won" and rival is not None:
            verdicts[decision.rival] = (
                f"cross-corpus duplicate: lost to {path}:{line_no} "
                f"(std-dev {_std(verdict.std)} < {_std(decision.rival_std)})"
            )
            verdicts[index] = "winner"
        elif rival is not None:
            reason = (
                "tie keeps the current winner"
                if verdict.std == decision.rival_std
                else f"std-dev {_std(verdict.std)} is not below {_std(decision.rival_std)}"
            )
            verdicts[index] = f"cross-corpus duplicate: lost to {rival[0]}:{rival[1]} ({reason})"
    occurrences = []
    for index, (path, line_no, row, verdict) in enumerate(found):
        shown = {
            name: row.get(name)
            for name in ("src", "src_sha256", "corpus", "corpus_source", "mos", "mos_std_dev")
            if name in row
        }
        if verdict.label:
            shown["label"] = verdict.label
        if verdict.reason is None and params.std_dev_units == "unified":
            shown["std_dev_unified"] = None if verdict.std == float("inf") else round(verdict.std, 6)
        occurrences.append(
            Occurrence(
                path, line_no, shown, verdicts[index], groups.get(verdict.digest, -1) if verdict.reason is None else -1
            )
        )
    return occurrences, params.resolver()


def _std(value: float) -> str:
    return "unknown" if value == float("inf") else f"{value:g}"
