"""What verify and verify-import report: findings with their causes, the report, the collector."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from corpusprov.io.hashing import Digest, hash_file
from corpusprov.io.inputs import resolves_inside
from corpusprov.record.redact import OUTSIDE_REPO

__all__ = [
    "CAUSE_COUNTERS",
    "CAUSE_DEP_UNREAD",
    "CAUSE_DVC2",
    "CAUSE_INPUT_CHANGED",
    "CAUSE_INPUT_MISSING",
    "CAUSE_INPUT_SAME_SIZE",
    "CAUSE_INPUT_UNTRACKED",
    "CAUSE_INTERRUPTED",
    "CAUSE_LOCK_EDITED",
    "CAUSE_LOCK_MISSING",
    "CAUSE_MANIFEST_EDITED",
    "CAUSE_MANIFEST_MISSING",
    "CAUSE_OUTPUT_EDITED",
    "CAUSE_OUTPUT_MISSING",
    "CAUSE_OUTSIDE",
    "CAUSE_PARAMS_PENDING",
    "CAUSE_SHARD_ADDED",
    "CAUSE_STRAY_FILE",
    "CAUSE_STRAY_OUTPUT",
    "MANIFEST_SUFFIX",
    "Checker",
    "Finding",
    "VerifyReport",
]

MANIFEST_SUFFIX: Final = ".manifest.json"

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
CAUSE_STRAY_OUTPUT: Final = (
    "a file in an output folder that the stage did not write but DVC hashes into the folder "
    "out: move it out (the next `dvc repro` would cache it with the stage's outputs)"
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


class Checker:
    """Collects findings and counts checks for one stage (verify) or one repository (verify-import)."""

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
