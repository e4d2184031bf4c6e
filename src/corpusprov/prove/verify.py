"""verify: prove that dvc.lock, each stage's manifest and the bytes on disk agree."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from corpusprov.dotted import changes
from corpusprov.errors import CorpusprovError
from corpusprov.io.inputs import dvc_dir_md5
from corpusprov.io.outputs import interrupted_commits
from corpusprov.params.load import load_params
from corpusprov.prove.dvcfiles import StagePlan, load_dvc_lock, plan_stages
from corpusprov.prove.evidencecheck import check_evidence
from corpusprov.prove.findings import (
    CAUSE_COUNTERS,
    CAUSE_DEP_UNREAD,
    CAUSE_DVC2,
    CAUSE_INPUT_CHANGED,
    CAUSE_INPUT_MISSING,
    CAUSE_INPUT_UNTRACKED,
    CAUSE_INTERRUPTED,
    CAUSE_LOCK_EDITED,
    CAUSE_LOCK_MISSING,
    CAUSE_MANIFEST_EDITED,
    CAUSE_MANIFEST_MISSING,
    CAUSE_OUTPUT_EDITED,
    CAUSE_OUTPUT_MISSING,
    CAUSE_OUTSIDE,
    CAUSE_PARAMS_PENDING,
    CAUSE_SHARD_ADDED,
    CAUSE_STRAY_FILE,
    Checker,
    Finding,
    VerifyReport,
)
from corpusprov.prove.folderdeps import (
    expected_folder_md5,
    explain_folder,
    extras_explain,
    folder_entries,
    output_folders,
    stray_files,
)
from corpusprov.prove.lineage import check_links
from corpusprov.record.manifest import Manifest, accounting_problems, load_manifest

__all__ = ["kind_accounting", "verify"]


def _is_code(path: str) -> bool:
    """Deps that are the tool's code or config rather than data the stage reads."""
    return (
        path == "src"
        or path.startswith("src/")
        or path.endswith((".py", ".toml", ".cfg"))
        or Path(path).name in ("constraints.txt", "requirements.txt", "params.yaml")
    )


def _lock_entry(entries: Any, path: str) -> dict[str, Any] | None:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("path") == path:
            return entry
    return None


def _check_lock_hash(check: Checker, entry: dict[str, Any], what: str, expected: str, where: str, cause: str) -> None:
    if entry.get("hash") != "md5":
        check.checks += 1
        check.add(f"{what} (dvc.lock format)", "hash: md5", f"hash: {entry.get('hash')}", where, CAUSE_DVC2)
        return
    check.compare(what, entry.get("md5"), expected, where, cause)


def _verify_stage(root: Path, plan: StagePlan, lock: Any, rehash: bool, deep: bool = False) -> Checker:
    check = Checker(root, plan.name, rehash)
    stage_lock = (lock or {}).get("stages", {}).get(plan.name) if isinstance(lock, dict) else None
    if stage_lock is None and lock is not None:
        check.checks += 1
        check.add("stage in dvc.lock", "an entry", "none", "dvc.lock", CAUSE_LOCK_MISSING)
    if stage_lock is not None:
        _verify_lock_declares(check, plan, stage_lock)
    for manifest_path in plan.manifests:
        _verify_manifest(check, manifest_path, stage_lock or {}, stage_lock is not None, deep)
    for path in plan.evidence:
        entry = _lock_entry((stage_lock or {}).get("outs"), path)
        digest = check.digest(path)
        if entry is not None and digest is not None:
            _check_lock_hash(check, entry, "evidence md5 (dvc.lock)", digest.md5, path, CAUSE_OUTPUT_EDITED)
        check_evidence(check, path)
    return check


def _verify_lock_declares(check: Checker, plan: StagePlan, stage_lock: dict[str, Any]) -> None:
    """The dvc.lock stage records every out and params group dvc.yaml declares (else it is not this stage)."""
    for out in plan.outs:
        if out in plan.manifests:
            continue  # reported with the manifest's own checks
        check.checks += 1
        if _lock_entry(stage_lock.get("outs"), out) is None:
            check.add("out in dvc.lock", "an entry (dvc.yaml declares it)", "none", out, CAUSE_LOCK_EDITED)
    locked = stage_lock.get("params") or {}
    for file_name, group in plan.params:
        check.checks += 1
        if group not in (locked.get(file_name) or {}):
            check.add(
                "params group in dvc.lock",
                f"{file_name}: {group} (dvc.yaml declares it)",
                "none",
                "dvc.lock",
                CAUSE_LOCK_EDITED,
            )


def kind_accounting(kind: str) -> dict[str, Any]:
    """The counters that must add up for a manifest of ``kind``, as our code defines them."""
    if kind == "merge":
        from corpusprov.stages.merge import MERGE_ACCOUNTING

        return dict(MERGE_ACCOUNTING)
    from corpusprov.stages.aggregate import AGGREGATE_ACCOUNTING

    return dict(AGGREGATE_ACCOUNTING)


def _verify_manifest(
    check: Checker, manifest_path: str, stage_lock: dict[str, Any], has_lock: bool, deep: bool = False
) -> None:
    root = check.root
    check.checks += 1
    for intent in interrupted_commits((root / manifest_path).parent):
        check.add(
            "commit of the stage's outputs",
            "complete",
            f"interrupted ({intent.name} left behind)",
            manifest_path,
            CAUSE_INTERRUPTED,
        )
    check.checks += 1
    if check.outside(manifest_path):
        check.add(
            "manifest inside the repository", "a file inside it", "a path leading outside", manifest_path, CAUSE_OUTSIDE
        )
        return
    if not (root / manifest_path).is_file():
        check.add("manifest exists", "a file", "missing", manifest_path, CAUSE_MANIFEST_MISSING)
        return
    try:
        manifest, document = load_manifest(root / manifest_path, manifest_path)
    except CorpusprovError as exc:
        check.add("manifest schema", "valid manifest JSON", exc.message, manifest_path, CAUSE_MANIFEST_EDITED)
        return
    if deep:
        check_links(check, document, manifest_path)
    if has_lock:
        entry = _lock_entry(stage_lock.get("outs"), manifest_path)
        digest = check.digest(manifest_path)
        if entry is None:
            check.checks += 1
            check.add("manifest in dvc.lock outs", "an entry", "none", "dvc.lock", CAUSE_LOCK_EDITED)
        elif digest is not None:
            _check_lock_hash(check, entry, "manifest md5 (dvc.lock)", digest.md5, manifest_path, CAUSE_MANIFEST_EDITED)
    ours = kind_accounting(manifest.kind)
    check.compare(
        "accounting (counters that must add up)",
        json.dumps(ours, sort_keys=True),
        json.dumps(manifest.accounting, sort_keys=True),
        manifest_path,
        CAUSE_MANIFEST_EDITED,
    )
    for problem in accounting_problems(manifest, ours):
        check.checks += 1
        check.add("counters add up", "rows_in = out + duplicates + rejected", problem, manifest_path, CAUSE_COUNTERS)
    _verify_row_counts(check, manifest, manifest_path, ours)
    _verify_outputs(check, manifest, stage_lock, has_lock)
    _verify_inputs(check, manifest, stage_lock, has_lock)
    if has_lock:
        _verify_params(check, manifest, stage_lock)


def _verify_row_counts(check: Checker, manifest: Manifest, manifest_path: str, accounting: dict[str, Any]) -> None:
    """Rows the manifest claims against its counters, and against the lines actually on disk."""
    claimed = {
        "corpus": sum(manifest.counters.get(name, 0) for name in accounting["out"]),
        "rejects": sum(manifest.counters.get(name, 0) for name in accounting["rejected"]),
    }
    for output in manifest.outputs:
        if output.role not in claimed or output.rows is None:
            continue
        check.compare(
            f"{output.role} rows (output entry vs counters)",
            claimed[output.role],
            output.rows,
            manifest_path,
            CAUSE_MANIFEST_EDITED,
        )
        # Only where the bytes are the recorded ones: an edited file is already a finding.
        digest = check.digest(output.path) if check.rehash else None
        lines = check.lines(output.path) if digest is not None and digest.md5 == output.md5 else None
        # Part of the rows check above (counted once, so --no-rehash, which reads no bytes,
        # reports the same number of checks): the lines on disk, where they were read.
        if lines is not None and lines != output.rows:
            check.add(
                f"{output.role} rows (manifest vs lines on disk)",
                output.rows,
                lines,
                output.path,
                CAUSE_MANIFEST_EDITED,
            )


def _verify_outputs(check: Checker, manifest: Manifest, stage_lock: dict[str, Any], has_lock: bool) -> None:
    outs = stage_lock.get("outs")
    in_folders: list[tuple[str, str]] = []  # outputs dvc.lock records only as part of a folder out
    for output in manifest.outputs:
        check.file_matches(
            output.path,
            output.bytes,
            output.md5,
            output.sha256,
            role=output.role,
            missing_cause=CAUSE_OUTPUT_MISSING,
            changed_cause=CAUSE_OUTPUT_EDITED,
        )
        if not has_lock:
            continue
        entry = _lock_entry(outs, output.path)
        if entry is None:
            in_folders.append((output.path, output.md5))
            continue
        _check_lock_hash(
            check, entry, f"{output.role} md5 (dvc.lock vs manifest)", output.md5, output.path, CAUSE_LOCK_EDITED
        )
    # A folder out's .dir md5 in dvc.lock is the listing of the outputs the manifest records in it.
    for folder, entry, members in output_folders(outs, in_folders):
        expected = expected_folder_md5(check, folder, entry, members)
        _check_lock_hash(check, entry, "output folder md5 (dvc.lock vs manifest)", expected, folder, CAUSE_LOCK_EDITED)


def _verify_inputs(check: Checker, manifest: Manifest, stage_lock: dict[str, Any], has_lock: bool) -> None:
    for record in manifest.inputs:
        check.file_matches(
            record.path,
            record.bytes,
            record.md5,
            record.sha256,
            role="input",
            missing_cause=CAUSE_INPUT_MISSING,
            changed_cause=CAUSE_INPUT_CHANGED,
        )
    by_path = {record.path: record for record in manifest.inputs}
    # The manifests beside the inputs are read too (their sha256 is recorded): a dep, not a stray one.
    upstream = {record.upstream.path for record in manifest.inputs if record.upstream is not None}
    folders = {folder["path"]: folder for folder in manifest.input_folders}
    for folder_path, folder in folders.items():
        members = [record for record in manifest.inputs if record.arg == folder_path]
        recomputed = dvc_dir_md5(folder_entries(members))
        check.compare(
            "input folder .dir md5 (manifest self-check)",
            folder["dvc_dir_md5"],
            recomputed,
            folder_path,
            CAUSE_MANIFEST_EDITED,
        )
        # What DVC hashes for this folder (its own .dvcignore filter), against what the stage read.
        listed = {name for name, _ in folder_entries(members)}
        check.checks += 1
        for relpath in stray_files(check, folder_path, listed):
            shard = "/" not in relpath and relpath.endswith(".jsonl")
            check.add(
                "input folder listing",
                "only the manifest's files",
                f"extra file {relpath}, not in the manifest",
                f"{folder_path}/{relpath}",
                CAUSE_SHARD_ADDED if shard else CAUSE_STRAY_FILE,
            )
    if not has_lock:
        return
    covered: set[str] = set()
    for dep in stage_lock.get("deps") or []:
        path = str(dep.get("path", ""))
        if _is_code(path):
            continue
        if path in folders:
            members = [record for record in manifest.inputs if record.arg == path]
            covered.update(record.path for record in members)
            expected = folders[path]["dvc_dir_md5"]
            if extras_explain(check, path, folder_entries(members), dep):
                # dvc.lock hashed the stray files reported above as well: not an edited dvc.lock.
                expected = str(dep.get("md5"))
            _check_lock_hash(check, dep, "input folder md5 (dvc.lock vs manifest)", expected, path, CAUSE_LOCK_EDITED)
            explain_folder(check, path, dep, by_path)
        elif path in upstream:
            check.checks += 1
        elif path in by_path:
            covered.add(path)
            _check_lock_hash(check, dep, "input md5 (dvc.lock vs manifest)", by_path[path].md5, path, CAUSE_LOCK_EDITED)
        else:
            check.checks += 1
            check.add("data dependency read by the stage", "listed in the manifest", "not read", path, CAUSE_DEP_UNREAD)
    for record in manifest.inputs:
        check.checks += 1
        if record.path not in covered:
            check.add("input listed in dvc.lock deps", "a dep", "none", record.path, CAUSE_INPUT_UNTRACKED)


def _verify_params(check: Checker, manifest: Manifest, stage_lock: dict[str, Any]) -> None:
    group = manifest.params["group"]
    params_path = manifest.params["path"]
    if params_path is None:
        return
    locked = (stage_lock.get("params") or {}).get(params_path, {})
    if group in locked:
        _compare_params(
            check,
            "dvc.lock vs manifest",
            locked[group],
            manifest.params["values"],
            group,
            params_path,
            CAUSE_LOCK_EDITED,
        )
    try:
        current = load_params(check.root / params_path, params_path, required=True).group_values(group)
    except CorpusprovError as exc:
        check.checks += 1
        check.add(f"params {group} readable", "valid params.yaml", exc.message, params_path, CAUSE_PARAMS_PENDING)
        return
    # Only this stage's group matters: edits to other groups or comments are not its concern.
    # An edit not yet reproduced (or one `dvc repro` refused, leaving the previous build in
    # place) is pending, not a disagreement: the build on disk is intact and says so.
    _compare_params(
        check,
        "params.yaml vs manifest",
        manifest.params["values"],
        current,
        group,
        params_path,
        CAUSE_PARAMS_PENDING,
        pending=True,
    )


def _compare_params(
    check: Checker, label: str, expected: Any, found: Any, group: str, where: str, cause: str, *, pending: bool = False
) -> None:
    """One finding per changed dotted key, e.g. ``merge.dedup.keep: first -> last``."""
    check.checks += 1
    report = check.add_pending if pending else check.add
    for key, old, new in changes(expected, found, group):
        report(f"param {key} ({label})", _show(old), _show(new), where, cause)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def verify(root: Path, stages: Sequence[str] = (), *, rehash: bool = True, deep: bool = False) -> VerifyReport:
    """Check every stage with a manifest (or only ``stages``); ``deep``: and every lineage link down the chain."""
    plans, skipped = plan_stages(root, stages, evidence=True)
    lock = load_dvc_lock(root)
    findings: list[Finding] = []
    pending: list[Finding] = []
    checks = 0
    if lock is None and plans:
        checks += 1
        findings.append(Finding("*", "dvc.lock exists", "a file", "missing", "dvc.lock", CAUSE_LOCK_MISSING))
    for plan in plans:
        checker = _verify_stage(root, plan, lock, rehash, deep)
        findings.extend(checker.findings)
        pending.extend(checker.pending)
        checks += checker.checks
    return VerifyReport(tuple(plan.name for plan in plans), tuple(skipped), checks, tuple(findings), tuple(pending))
