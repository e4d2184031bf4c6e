"""verify-import: in a consumer repository, prove imported corpora are the bytes their manifests describe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpusprov.errors import CorpusprovError, DvcFileError, UsageError
from corpusprov.io.hashing import hash_file
from corpusprov.io.inputs import resolves_inside
from corpusprov.prove.dvcfiles import is_repo_relative, load_dvc_file
from corpusprov.prove.findings import (
    CAUSE_MANIFEST_EDITED,
    CAUSE_OUTPUT_EDITED,
    CAUSE_OUTSIDE,
    MANIFEST_SUFFIX,
    Checker,
    VerifyReport,
)
from corpusprov.record.manifest import load_manifest

__all__ = ["ImportedFile", "find_imports", "verify_imports"]

CAUSE_NOT_PULLED = "imported file missing: run `dvc pull` (or `dvc update` the import)"
CAUSE_OTHER_REVISION = (
    "the corpus and its manifest were imported from different revisions: `dvc import` both at the same --rev"
)
CAUSE_DVC_FILE = "the .dvc file's md5 differs from the bytes: the import was edited or not checked out"
CAUSE_NO_CORPUS = "the manifest's corpus was not imported: `dvc import` it beside the manifest"


@dataclass(frozen=True)
class ImportedFile:
    """One ``dvc import`` of a file from another repository."""

    dvc_file: str
    """The consumer's ``.dvc`` file."""
    source_path: str
    """Path in the source repository."""
    repo_url: str
    """The source repository."""
    rev_lock: str | None
    """Commit the import is pinned to."""
    local_path: str
    """Where the import lives in the consumer."""
    md5: str | None
    """md5 the ``.dvc`` file records."""


def find_imports(root: Path) -> list[ImportedFile]:
    """Every single-file ``dvc import`` under ``root`` (outside .git/.dvc)."""
    found = []
    for dvc_file in sorted(root.rglob("*.dvc")):
        relative = dvc_file.relative_to(root)
        if relative.parts[0] in (".git", ".dvc") or not dvc_file.is_file():
            continue
        data = load_dvc_file(dvc_file, relative.as_posix())
        deps, outs = data["deps"], data["outs"]
        if len(deps) != 1 or len(outs) != 1 or "repo" not in deps[0]:
            continue
        out_path = (relative.parent / outs[0]["path"]).as_posix()
        if not is_repo_relative(out_path):
            raise DvcFileError(
                f"outs[0].path {outs[0]['path']!r} leaves the repository",
                path=relative.as_posix(),
                fix="an import lives inside the consumer repository; restore the .dvc file",
            )
        repo = deps[0]["repo"]
        found.append(
            ImportedFile(
                relative.as_posix(), deps[0]["path"], repo["url"], repo.get("rev_lock"), out_path, outs[0].get("md5")
            )
        )
    return found


def _same_repo_key(root: Path, item: ImportedFile) -> str:
    """One spelling per repository: local paths resolved (from the consumer's root), URLs trimmed."""
    url = item.repo_url
    if "://" not in url and not url.startswith("git@"):
        return str((root / url).resolve())
    url = url.rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def verify_imports(root: Path) -> VerifyReport:
    """For each imported manifest, check the imported corpus against it, and both against their .dvc files."""
    imports = find_imports(root)
    manifests = [item for item in imports if item.source_path.endswith(MANIFEST_SUFFIX)]
    if not manifests:
        raise UsageError(
            "no imported manifest (`*.manifest.json` brought in by `dvc import`) here",
            fix="import the corpus and its manifest: dvc import URL PATH and "
            "dvc import URL PATH.manifest.json, at the same --rev",
        )
    checkers: list[Checker] = []

    def counterpart_of(manifest_import: ImportedFile, source_path: str) -> ImportedFile | None:
        """The import of ``source_path`` from the same repository, preferring the same revision
        and then the manifest's own folder (two releases can sit side by side)."""
        repo = _same_repo_key(root, manifest_import)
        candidates = [
            item for item in imports if item.source_path == source_path and _same_repo_key(root, item) == repo
        ]
        if not candidates:
            return None
        folder = str(Path(manifest_import.local_path).parent)
        candidates.sort(
            key=lambda item: (
                item.rev_lock != manifest_import.rev_lock,
                str(Path(item.local_path).parent) != folder,
                item.local_path,
            )
        )
        return candidates[0]

    for imported in manifests:
        check = Checker(root, imported.local_path, rehash=True)
        checkers.append(check)
        target = root / imported.local_path
        check.checks += 1
        if not resolves_inside(target, root):
            check.add(
                "manifest inside the repository",
                "a file inside it",
                "a link leading outside",
                imported.local_path,
                CAUSE_OUTSIDE,
            )
            continue
        if not target.is_file():
            check.add("manifest present", "a file", "missing", imported.local_path, CAUSE_NOT_PULLED)
            continue
        check.checks += 1
        manifest_md5 = hash_file(target).md5
        if imported.md5 is not None and manifest_md5 != imported.md5:
            check.add("manifest md5 (.dvc vs bytes)", imported.md5, manifest_md5, imported.local_path, CAUSE_DVC_FILE)
        try:
            manifest, _ = load_manifest(target, imported.local_path)
        except CorpusprovError as exc:
            check.add("manifest schema", "valid manifest", exc.message, imported.local_path, CAUSE_MANIFEST_EDITED)
            continue
        for output in manifest.outputs:
            if output.role not in ("corpus", "rejects"):
                continue
            counterpart = counterpart_of(imported, output.path)
            check.checks += 1
            if counterpart is None:
                if output.role == "corpus":
                    check.add("corpus imported", output.path, "not imported", imported.local_path, CAUSE_NO_CORPUS)
                continue
            if counterpart.rev_lock != imported.rev_lock:
                check.add(
                    f"{output.role} revision",
                    imported.rev_lock,
                    counterpart.rev_lock,
                    counterpart.dvc_file,
                    CAUSE_OTHER_REVISION,
                )
            path = root / counterpart.local_path
            if not resolves_inside(path, root):
                check.add(
                    f"{output.role} inside the repository",
                    "a file inside it",
                    "a link leading outside",
                    counterpart.local_path,
                    CAUSE_OUTSIDE,
                )
                continue
            if not path.is_file():
                check.add(f"{output.role} present", "a file", "missing", counterpart.local_path, CAUSE_NOT_PULLED)
                continue
            digest = hash_file(path)
            check.checks += 2
            if (digest.sha256, digest.md5, digest.bytes) != (output.sha256, output.md5, output.bytes):
                check.add(
                    f"{output.role} sha256 (manifest vs bytes)",
                    output.sha256,
                    digest.sha256,
                    counterpart.local_path,
                    CAUSE_OUTPUT_EDITED,
                )
            if counterpart.md5 is not None and counterpart.md5 != output.md5:
                check.add(
                    f"{output.role} md5 (.dvc vs manifest)",
                    output.md5,
                    counterpart.md5,
                    counterpart.dvc_file,
                    CAUSE_DVC_FILE,
                )
    return VerifyReport(
        tuple(item.local_path for item in manifests),
        (),
        sum(check.checks for check in checkers),
        tuple(finding for check in checkers for finding in check.findings),
    )
