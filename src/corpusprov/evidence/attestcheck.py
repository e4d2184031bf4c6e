"""Check an attestation `corpusprov attest` wrote: its DSSE signature, its in-toto/SLSA shape, its subjects' bytes."""

from __future__ import annotations

import binascii
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from corpusprov.errors import DataError, InputError
from corpusprov.evidence.attest import PAYLOAD_TYPE, PREDICATE_TYPE
from corpusprov.evidence.keys import load_public_key
from corpusprov.io.hashing import hash_file

__all__ = [
    "AttestationReport",
    "SubjectCheck",
    "render_attestation_report",
    "statement_problems",
    "verify_attestation",
]

_CHECKED_DIGESTS: Final = ("sha256", "md5")

SubjectStatus = Literal["ok", "missing", "changed", "outside", "unchecked"]
SignatureStatus = Literal["verified", "bad", "unsigned", "not-checked"]


@dataclass(frozen=True)
class SubjectCheck:
    """One subject as found on disk."""

    name: str
    """The subject's name: a repo-relative path."""
    status: SubjectStatus
    """``ok``, ``missing``, ``changed``, ``outside`` (not a path in the repository) or ``unchecked`` (no sha256/md5)."""
    detail: str
    """What differs, for people (empty when ok)."""

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class AttestationReport:
    """What verify-attestation found."""

    path: str
    """The attestation file, as given."""
    signature: SignatureStatus
    """``verified``, ``bad``, ``unsigned`` (a bare statement), ``not-checked`` (an envelope, no key given)."""
    signature_required: bool
    """Whether a public key was given, so the statement must be signed by it."""
    keyid: str | None
    """The id of the key that verified the signature."""
    build_type: str
    """The predicate's ``buildType``."""
    subjects: tuple[SubjectCheck, ...]
    """Every subject, in statement order."""

    @property
    def signature_ok(self) -> bool:
        """The signature checks out, or none was asked for."""
        return self.signature == "verified" or (not self.signature_required and self.signature != "bad")

    @property
    def ok(self) -> bool:
        """The signature (if asked for) and every subject check out."""
        return self.signature_ok and all(check.status == "ok" for check in self.subjects)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "ok": self.ok,
            "signature": self.signature,
            "signature_required": self.signature_required,
            "keyid": self.keyid,
            "build_type": self.build_type,
            "subjects": [check.to_dict() for check in self.subjects],
        }


@cache
def _schema(name: str) -> dict[str, Any]:
    text = resources.files("corpusprov").joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def statement_problems(statement: Any) -> list[str]:
    """Where ``statement`` breaks the in-toto Statement v1 or SLSA Provenance v1 schema (empty when valid)."""
    from jsonschema import Draft202012Validator

    problems = _problems(Draft202012Validator(_schema("in-toto-statement-v1")), statement, "")
    if problems:
        return problems
    if statement["predicateType"] != PREDICATE_TYPE:
        return [f"predicateType: {statement['predicateType']!r} is not {PREDICATE_TYPE}"]
    return _problems(Draft202012Validator(_schema("slsa-provenance-v1")), statement["predicate"], "predicate")


def _problems(validator: Any, document: Any, prefix: str) -> list[str]:
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda err: [str(part) for part in err.absolute_path]):
        parts = [prefix, *(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)]
        where = "".join(parts).lstrip(".") or "(top level)"
        problems.append(f"{where}: {error.message}")
    return problems


def verify_attestation(path: Path, pubkey_path: Path | None, root: Path) -> AttestationReport:
    """Check the attestation at ``path``: the signature (with ``pubkey_path``), the schemas, every subject's bytes."""
    display = str(path)
    document = _read_document(path, display)
    keyid = None
    if isinstance(document, dict) and "payloadType" in document:
        statement, signature, keyid = _open_envelope(document, pubkey_path, display)
    else:
        statement, signature = document, "unsigned"
    problems = statement_problems(statement)
    if problems:
        raise DataError(
            f"not an in-toto Statement v1 with SLSA Provenance v1: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            path=display,
            fix="give a file `corpusprov attest` wrote",
        )
    root = Path(os.path.abspath(root))
    subjects = tuple(_check_subject(subject, root) for subject in statement["subject"])
    return AttestationReport(
        display,
        signature,
        pubkey_path is not None,
        keyid,
        statement["predicate"]["buildDefinition"]["buildType"],
        subjects,
    )


def _read_document(path: Path, display: str) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            "attestation does not exist", path=display, fix="give the path `corpusprov attest` wrote"
        ) from None
    except IsADirectoryError:
        raise InputError("attestation path is a folder", path=display, fix="give an *.intoto.json file") from None
    except OSError as exc:
        raise InputError(
            f"cannot read attestation: {exc.strerror or exc}", path=display, fix="check its permissions"
        ) from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"attestation is not JSON: {exc}", path=display, fix="give a file `corpusprov attest` wrote"
        ) from None


def _open_envelope(
    document: dict[str, Any], pubkey_path: Path | None, display: str
) -> tuple[Any, SignatureStatus, str | None]:
    """The statement inside a DSSE envelope, the signature's status and the verifying key's id."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import FormatError, VerificationError

    if document.get("payloadType") != PAYLOAD_TYPE:
        raise DataError(
            f"DSSE payloadType is {document.get('payloadType')!r}, not {PAYLOAD_TYPE}",
            path=display,
            fix="give an in-toto attestation",
        )
    key = load_public_key(pubkey_path) if pubkey_path is not None else None
    try:
        envelope = Envelope.from_dict(json.loads(json.dumps(document)))
        statement = json.loads(envelope.payload)
    except (KeyError, TypeError, ValueError, AttributeError, FormatError, binascii.Error):
        raise DataError(
            "not a valid DSSE envelope (payload, payloadType, signatures)",
            path=display,
            fix="give a file `corpusprov attest --key` wrote",
        ) from None
    if key is None:
        return statement, "not-checked", None
    try:
        envelope.verify([key], 1)
    except (VerificationError, ValueError):
        return statement, "bad", None
    return statement, "verified", str(key.keyid)


def _check_subject(subject: dict[str, Any], root: Path) -> SubjectCheck:
    name = subject.get("name", "")
    if not isinstance(name, str) or not name or Path(name).is_absolute() or "\\" in name:
        return SubjectCheck(str(name), "outside", "not a repo-relative path")
    candidate = Path(os.path.realpath(root / name))
    if not candidate.is_relative_to(Path(os.path.realpath(root))):
        return SubjectCheck(name, "outside", "the path leads outside the repository")
    recorded = {
        algorithm: subject["digest"][algorithm] for algorithm in _CHECKED_DIGESTS if algorithm in subject["digest"]
    }
    if not recorded:
        return SubjectCheck(name, "unchecked", "no sha256 or md5 digest to compare")
    try:
        digest = hash_file(candidate)
    except FileNotFoundError:
        return SubjectCheck(name, "missing", "not on disk (`dvc pull` or `dvc checkout` it)")
    except OSError as exc:
        return SubjectCheck(name, "missing", f"cannot read: {exc.strerror or exc}")
    found = {"sha256": digest.sha256, "md5": digest.md5}
    differ = [algorithm for algorithm, value in recorded.items() if found[algorithm] != value]
    if differ:
        first = differ[0]
        return SubjectCheck(
            name, "changed", f"{first} {found[first][:12]}… on disk, the attestation says {recorded[first][:12]}…"
        )
    return SubjectCheck(name, "ok", "")


def render_attestation_report(report: AttestationReport) -> str:
    """The report for people: the signature, one line per subject, the verdict."""
    signature = {
        "verified": f"signature verified (key {report.keyid})",
        "bad": "signature does NOT verify with the given public key",
        "unsigned": "unsigned statement"
        + (": --pubkey asks for a signed envelope" if report.signature_required else " (no signature to check)"),
        "not-checked": "signed envelope; signature NOT checked (give --pubkey to check it)",
    }[report.signature]
    lines = [f"{report.path}: {report.build_type}", f"  {signature}"]
    width = max((len(check.status) for check in report.subjects), default=2)
    for check in report.subjects:
        lines.append(f"  {check.status:<{width}}  {check.name}" + (f": {check.detail}" if check.detail else ""))
    failed = [check for check in report.subjects if check.status != "ok"]
    if report.ok:
        unchecked = "; the signature was NOT checked" if report.signature == "not-checked" else ""
        lines.append(f"verify-attestation: OK: {len(report.subjects)} subjects match{unchecked}")
    else:
        reasons = [] if report.signature_ok else ["signature"]
        if failed:
            reasons.append(f"{len(failed)} of {len(report.subjects)} subjects ({', '.join(c.name for c in failed)})")
        lines.append(f"verify-attestation: FAILED: {' and '.join(reasons)}")
    return "\n".join(lines)
