"""verify: prove that dvc.lock, each stage's manifest and the bytes on disk agree."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from corpusprov.dotted import changes
from corpusprov.errors import CorpusprovError, UsageError, escaped
from corpusprov.io.inputs import dvc_dir_md5, resolves_inside
from corpusprov.io.jsonl import Digest, hash_file
from corpusprov.io.outputs import interrupted_commits
from corpusprov.params.load import load_params
from corpusprov.prove.dvcfiles import load_dvc_lock, load_dvc_yaml
from corpusprov.prove.dvcignore import dvc_folder_files
from corpusprov.record.manifest import Manifest, accounting_problems, load_manifest
from corpusprov.record.redact import OUTSIDE_REPO

__all__ = ["Finding", "StagePlan", "VerifyReport", "kind_accounting", "plan_stages", "verify"]

MANIFEST_SUFFIX: Final = ".manifest.json"
_DIR_MD5: Final = re.compile(r"^[0-9a-f]{32}\.dir$")

#: Plain-words causes, so a finding says what probably happened, not only what differs.
CAUSE_INPUT_CHANGED: Final = "input changed after the last `dvc repro` (run `dvc repro`, or restore it)"
CAUSE_INPUT_SAME_SIZE: Final = "input replaced by a different file of the same size after the last `dvc repro`"
CAUSE_INPUT_MISSING: Final = "input deleted or not pulled (`dvc pull` / `dvc checkout`)"
CAUSE_OUTPUT_EDITED: Final = (
    "output bytes differ from the recorded hash: edited after it was written, or a "
    "corrupted copy came from the cache or remote (restore it; `verify = true` on "
    "the remote makes `dvc pull` check)"
)
CAUSE_OUTPUT_MISSING: Final = "output deleted or not pulled (`dvc pull` / `dvc checkout`)"
CAUSE_MANIFEST_EDITED: Final = "manifest edited by hand after `dvc repro` (restore with `dvc checkout`)"
CAUSE_MANIFEST_MISSING: Final = "manifest deleted or not pulled (`dvc pull` / `dvc checkout`)"
CAUSE_LOCK_EDITED: Final = (
    "dvc.lock disagrees with the manifest: dvc.lock edited, or a dvc.lock "
    "from another run (commit the dvc.lock `dvc repro` wrote)"
)
CAUSE_LOCK_MISSING: Final = "`dvc.lock` not committed, or `dvc repro` never ran"
CAUSE_PARAMS_PENDING: Final = "params.yaml changed and the change is not yet reproduced (run `dvc repro`)"
CAUSE_SHARD_ADDED: Final = "shard added to the input folder after the last `dvc repro`"
CAUSE_STRAY_FILE: Final = (
    "a file in the input folder that the stage does not read (it reads the folder's *.jsonl) "
    "but DVC hashes into the folder dep: list it in .dvcignore, or move it out"
)
CAUSE_DEP_UNREAD: Final = "dvc.yaml lists a data dependency the stage does not read (or the manifest lost it)"
CAUSE_INPUT_UNTRACKED: Final = "the stage reads an input dvc.yaml does not list as a dependency"
CAUSE_DVC2: Final = (
    "dvc.lock entry without `hash: md5` (DVC 2 format, md5 may be of dos2unix'd "
    "text); re-run `dvc repro` under DVC 3 to compare it"
)
CAUSE_COUNTERS: Final = "manifest counters do not add up: manifest edited by hand or written by a bug"
CAUSE_INTERRUPTED: Final = (
    "a run was killed while putting its outputs in place (between two renames): the "
    "next `corpusprov merge`/`aggregate` (or `dvc repro`) into that folder finishes it"
)
CAUSE_OUTSIDE: Final = (
    "the path leads outside the repository (a symbolic link, or recorded with "
    "--allow-outside-repo): verify does not open files there"
)


@dataclass(frozen=True)
class Finding:
    """One disagreement between dvc.lock, a manifest and the bytes on disk."""

    stage: str
    """The dvc.yaml stage."""
    what: str
    """What was compared (``input md5``, ``params``, ...)."""
    expected: str
    """What the reference (manifest or dvc.lock) says."""
    found: str
    """What is actually there."""
    where: str
    """The file the finding is about."""
    cause: str
    """The likely cause, in plain words."""


@dataclass(frozen=True)
class StagePlan:
    """A dvc.yaml stage that writes a manifest."""

    name: str
    """Stage name."""
    manifests: tuple[str, ...]
    """Repo-relative manifest outs."""
    outs: tuple[str, ...]
    """Every out of the stage."""
    params: tuple[tuple[str, str], ...] = ()
    """``(params file, group)`` pairs dvc.yaml declares for the stage."""


@dataclass(frozen=True)
class VerifyReport:
    """Everything verify checked and what it found."""

    stages: tuple[str, ...]
    """Stages with a manifest that were checked."""
    skipped: tuple[str, ...]
    """Stages without a manifest."""
    checks: int
    """Comparisons made."""
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    """Disagreements (empty when everything agrees)."""
    pending: tuple[Finding, ...] = field(default_factory=tuple)
    """Params edited in params.yaml since the last ``dvc repro``: the build on disk still agrees
    with dvc.lock and its manifest (it is the previous params' build), so these are said, not failed."""

    @property
    def ok(self) -> bool:
        """True when nothing disagrees."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json``."""
        return {
            "ok": self.ok,
            "stages": list(self.stages),
            "skipped": list(self.skipped),
            "checks": self.checks,
            "findings": [asdict(item) for item in self.findings],
            "pending": [asdict(item) for item in self.pending],
        }


def plan_stages(root: Path, only: Sequence[str] = ()) -> tuple[list[StagePlan], list[str]]:
    """Stages of ``dvc.yaml`` whose outs include a manifest, and those without one."""
    stages = load_dvc_yaml(root)
    if stages is None:
        raise UsageError(
            "no dvc.yaml here",
            path="dvc.yaml",
            fix="run it inside the corpus repository; in a repository that `dvc import`s "
            "a corpus and its manifest, run `corpusprov verify-import`",
        )
    unknown = [name for name in only if name not in stages]
    if unknown:
        raise UsageError(
            f"no stage {unknown[0]!r} in dvc.yaml",
            path="dvc.yaml",
            fix=f"stages: {', '.join(escaped(name) for name in stages) or '(none)'}",
        )
    plans: list[StagePlan] = []
    skipped: list[str] = []
    for name, stage in stages.items():
        if only and name not in only:
            continue
        outs = [*stage["outs"], *stage["metrics"]]
        manifests = tuple(path for path in outs if path.endswith(MANIFEST_SUFFIX))
        if manifests:
            declared = tuple((file_name, group) for file_name, groups in stage["params"].items() for group in groups)
            plans.append(StagePlan(str(name), manifests, tuple(outs), declared))
        else:
            skipped.append(str(name))
    return plans, skipped


def _is_code(path: str) -> bool:
    """Deps that are the tool's code or config rather than data the stage reads."""
    return (
        path == "src"
        or path.startswith("src/")
        or path.endswith((".py", ".toml", ".cfg"))
        or Path(path).name in ("constraints.txt", "requirements.txt", "params.yaml")
    )


class _Checker:
    """Collects findings for one stage."""

    def __init__(self, root: Path, stage: str, rehash: bool) -> None:
        self.root = root
        self.stage = stage
        self.rehash = rehash
        self.findings: list[Finding] = []
        self.pending: list[Finding] = []
        self.checks = 0
        self._hashes: dict[str, Digest | None] = {}
        self.extras: dict[str, dict[str, str]] = {}
        """Per input folder: files DVC hashes that the manifest does not list (relpath -> path)."""

    def add(self, what: str, expected: object, found: object, where: str, cause: str) -> None:
        self.findings.append(Finding(self.stage, what, str(expected), str(found), where, cause))

    def add_pending(self, what: str, expected: object, found: object, where: str, cause: str) -> None:
        self.pending.append(Finding(self.stage, what, str(expected), str(found), where, cause))

    def outside(self, path: str) -> bool:
        """Whether ``path`` is recorded outside the repository or is a link leading out of it."""
        return path.startswith(OUTSIDE_REPO) or not resolves_inside(self.root / path, self.root)

    def digest(self, path: str) -> Digest | None:
        if path not in self._hashes:
            target = self.root / path
            inside = not self.outside(path)
            self._hashes[path] = hash_file(target) if inside and target.is_file() else None
        return self._hashes[path]

    def lines(self, path: str) -> int | None:
        """Lines in ``path`` (a last line without newline counts), or ``None`` if it cannot be read here."""
        if self.outside(path) or not (self.root / path).is_file():
            return None
        count = 0
        last = b"\n"
        try:
            with open(self.root / path, "rb") as handle:
                while block := handle.read(1 << 20):
                    count += block.count(b"\n")
                    last = block[-1:]
        except OSError:
            return None
        return count + (last != b"\n")

    def compare(self, what: str, expected: object, found: object, where: str, cause: str) -> bool:
        self.checks += 1
        if expected != found:
            self.add(what, expected, found, where, cause)
            return False
        return True

    def file_matches(
        self, path: str, size: int, md5: str, sha256: str, *, role: str, missing_cause: str, changed_cause: str
    ) -> None:
        """The file on disk against the manifest's record of it."""
        target = self.root / path
        self.checks += 1
        if self.outside(path):
            self.add(f"{role} inside the repository", "a file inside it", "a path leading outside", path, CAUSE_OUTSIDE)
            return
        if not target.is_file():
            self.add(f"{role} exists", "a file", "missing", path, missing_cause)
            return
        if not self.rehash:
            # One check either way, so --no-rehash and the full check report the same count.
            found = target.stat().st_size
            if found != size:
                self.add(f"{role} size", size, found, path, changed_cause)
            return
        digest = self.digest(path)
        assert digest is not None  # noqa: S101 -- is_file() checked above
        if digest.md5 == md5 and digest.sha256 == sha256 and digest.bytes == size:
            return
        cause = changed_cause
        if role == "input" and digest.bytes == size:
            cause = CAUSE_INPUT_SAME_SIZE
        self.add(f"{role} md5", md5, digest.md5, path, cause)


def _lock_entry(entries: Any, path: str) -> dict[str, Any] | None:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("path") == path:
            return entry
    return None


def _check_lock_hash(check: _Checker, entry: dict[str, Any], what: str, expected: str, where: str, cause: str) -> None:
    if entry.get("hash") != "md5":
        check.checks += 1
        check.add(f"{what} (dvc.lock format)", "hash: md5", f"hash: {entry.get('hash')}", where, CAUSE_DVC2)
        return
    check.compare(what, entry.get("md5"), expected, where, cause)


def _verify_stage(root: Path, plan: StagePlan, lock: Any, rehash: bool) -> _Checker:
    check = _Checker(root, plan.name, rehash)
    stage_lock = (lock or {}).get("stages", {}).get(plan.name) if isinstance(lock, dict) else None
    if stage_lock is None and lock is not None:
        check.checks += 1
        check.add("stage in dvc.lock", "an entry", "none", "dvc.lock", CAUSE_LOCK_MISSING)
    if stage_lock is not None:
        _verify_lock_declares(check, plan, stage_lock)
    for manifest_path in plan.manifests:
        _verify_manifest(check, manifest_path, stage_lock or {}, stage_lock is not None)
    return check


def _verify_lock_declares(check: _Checker, plan: StagePlan, stage_lock: dict[str, Any]) -> None:
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


def _verify_manifest(check: _Checker, manifest_path: str, stage_lock: dict[str, Any], has_lock: bool) -> None:
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
        manifest, _ = load_manifest(root / manifest_path, manifest_path)
    except CorpusprovError as exc:
        check.add("manifest schema", "valid manifest JSON", exc.message, manifest_path, CAUSE_MANIFEST_EDITED)
        return
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


def _verify_row_counts(check: _Checker, manifest: Manifest, manifest_path: str, accounting: dict[str, Any]) -> None:
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


def _verify_outputs(check: _Checker, manifest: Manifest, stage_lock: dict[str, Any], has_lock: bool) -> None:
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
        entry = _lock_entry(stage_lock.get("outs"), output.path)
        if entry is not None:
            _check_lock_hash(
                check, entry, f"{output.role} md5 (dvc.lock vs manifest)", output.md5, output.path, CAUSE_LOCK_EDITED
            )


def _verify_inputs(check: _Checker, manifest: Manifest, stage_lock: dict[str, Any], has_lock: bool) -> None:
    root = check.root
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
    folders = {folder["path"]: folder for folder in manifest.input_folders}
    for folder_path, folder in folders.items():
        members = [record for record in manifest.inputs if record.arg == folder_path]
        recomputed = dvc_dir_md5([(record.relpath or record.path, record.md5) for record in members])
        check.compare(
            "input folder .dir md5 (manifest self-check)",
            folder["dvc_dir_md5"],
            recomputed,
            folder_path,
            CAUSE_MANIFEST_EDITED,
        )
        # What DVC hashes for this folder (its own .dvcignore filter), against what the stage read.
        listed = {record.relpath or record.path for record in members}
        check.checks += 1
        for relpath in sorted(set(dvc_folder_files(root, folder_path) or ()) - listed):
            where = f"{folder_path}/{relpath}"
            shard = "/" not in relpath and relpath.endswith(".jsonl")
            check.add(
                "input folder listing",
                "only the manifest's files",
                f"extra file {relpath}, not in the manifest",
                where,
                CAUSE_SHARD_ADDED if shard else CAUSE_STRAY_FILE,
            )
            check.extras.setdefault(folder_path, {})[relpath] = where
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
            if _extras_explain(check, path, members, dep):
                # dvc.lock hashed the stray files reported above as well: not an edited dvc.lock.
                expected = str(dep.get("md5"))
            _check_lock_hash(check, dep, "input folder md5 (dvc.lock vs manifest)", expected, path, CAUSE_LOCK_EDITED)
            _explain_folder(check, path, dep, by_path)
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


def _extras_explain(check: _Checker, folder: str, members: list[Any], dep: dict[str, Any]) -> bool:
    """True when dvc.lock's folder md5 is the manifest's files plus the stray files on disk."""
    extras = check.extras.get(folder)
    if not extras:
        return False
    entries = [(record.relpath or record.path, record.md5) for record in members]
    for relpath, where in extras.items():
        digest = check.digest(where)
        if digest is None:
            return False
        entries.append((relpath, digest.md5))
    return dvc_dir_md5(entries) == dep.get("md5")


def _explain_folder(check: _Checker, folder: str, dep: dict[str, Any], by_path: dict[str, Any]) -> None:
    """Where DVC's cached ``.dir`` listing is at hand, name the file that differs."""
    md5 = str(dep.get("md5", ""))
    if not _DIR_MD5.match(md5):  # a lock's md5 names a cache file: never let it name a path
        return
    listing_path = check.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    if not listing_path.is_file():
        return
    try:
        listing = json.loads(listing_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(listing, list):
        return
    stray = set(check.extras.get(folder, {}))
    for item in listing:
        if not isinstance(item, dict):
            continue
        if item.get("relpath") in stray:
            continue  # reported as an extra file in the folder
        path = f"{folder}/{item.get('relpath')}"
        record = by_path.get(path)
        check.checks += 1
        if record is None:
            check.add("dvc.lock folder listing", "in the manifest", "not read by the stage", path, CAUSE_LOCK_EDITED)
        elif record.md5 != item.get("md5"):
            check.add(
                "input md5 (dvc.lock .dir listing vs manifest)", record.md5, item.get("md5"), path, CAUSE_LOCK_EDITED
            )


def _verify_params(check: _Checker, manifest: Manifest, stage_lock: dict[str, Any]) -> None:
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
    check: _Checker, label: str, expected: Any, found: Any, group: str, where: str, cause: str, *, pending: bool = False
) -> None:
    """One finding per changed dotted key, e.g. ``merge.dedup.keep: first -> last``."""
    check.checks += 1
    report = check.add_pending if pending else check.add
    for key, old, new in changes(expected, found, group):
        report(f"param {key} ({label})", _show(old), _show(new), where, cause)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def verify(root: Path, stages: Sequence[str] = (), *, rehash: bool = True) -> VerifyReport:
    """Check every stage with a manifest (or only ``stages``)."""
    plans, skipped = plan_stages(root, stages)
    lock = load_dvc_lock(root)
    findings: list[Finding] = []
    pending: list[Finding] = []
    checks = 0
    if lock is None and plans:
        checks += 1
        findings.append(Finding("*", "dvc.lock exists", "a file", "missing", "dvc.lock", CAUSE_LOCK_MISSING))
    for plan in plans:
        checker = _verify_stage(root, plan, lock, rehash)
        findings.extend(checker.findings)
        pending.extend(checker.pending)
        checks += checker.checks
    return VerifyReport(tuple(plan.name for plan in plans), tuple(skipped), checks, tuple(findings), tuple(pending))
