"""A manifest as an in-toto Statement v1 with a SLSA Provenance v1 predicate, optionally DSSE-signed; and its check.

The statement's subjects are every output the manifest records plus the manifest itself (name
= repo-relative path, digest = sha256 and md5), each re-hashed first so an attestation never
claims bytes the disk lacks. The predicate's ``buildType`` is
``https://corpusprov.dev/buildtypes/<kind>/v1`` (``merge`` or ``aggregate``): external
parameters are the params group, its values and the parsed arguments; internal parameters the
effective policy and the serialization; resolved dependencies every input shard, the params
file and (when recorded) the source commit. No wall clock: the same manifest gives the same
bytes, and Ed25519 signatures are deterministic, so a signed envelope is reproducible too.
Keys are read to sign and never written into the statement; `attestcheck` verifies what this writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from corpusprov.errors import DataError, InputError, UsageError
from corpusprov.evidence.keys import load_signer
from corpusprov.io.fsutil import atomic_writer
from corpusprov.io.hashing import Digest, hash_file
from corpusprov.record.manifest import Manifest, load_manifest
from corpusprov.record.redact import OUTSIDE_REPO

__all__ = [
    "BUILDER_ID",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Attestation",
    "attestation_bytes",
    "build_attestation",
    "build_type",
    "default_attestation_path",
    "statement_bytes",
    "write_attestation",
]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://slsa.dev/provenance/v1"
#: DSSE payload type of an in-toto statement (in-toto attestation spec, envelope layer).
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
#: The builder: the corpusprov CLI run by whoever holds the signing key.
BUILDER_ID: Final = "https://corpusprov.dev/builder/cli/v1"

_SUFFIX: Final = ".manifest.json"


def build_type(kind: str) -> str:
    """The ``buildType`` URI of a manifest kind (``merge`` or ``aggregate``)."""
    return f"https://corpusprov.dev/buildtypes/{kind}/v1"


@dataclass(frozen=True)
class Attestation:
    """A built attestation, ready to write."""

    document: dict[str, Any]
    """What is written: the statement, or the DSSE envelope holding it."""
    statement: dict[str, Any]
    """The in-toto statement (the envelope's payload when signed)."""
    target: Path
    """Where it is to be written (absolute)."""
    subjects: int
    """Number of subjects (outputs + the manifest)."""
    keyid: str | None
    """The signing key's id (securesystemslib's default keyid), or None when unsigned."""


def default_attestation_path(manifest_path: Path, *, signed: bool) -> Path:
    """``X.manifest.json`` -> ``X.intoto.json`` (``X.intoto.dsse.json`` when signed); other names get it appended."""
    suffix = ".intoto.dsse.json" if signed else ".intoto.json"
    return manifest_path.with_name(manifest_path.name.removesuffix(_SUFFIX) + suffix)


def build_attestation(
    manifest_path: Path, root: Path, target: Path | None = None, key_path: Path | None = None
) -> Attestation:
    """The statement for the manifest at ``manifest_path`` (paths relative to ``root``), signed with ``key_path``."""
    root = Path(os.path.abspath(root))
    manifest_path = Path(os.path.abspath(manifest_path))
    if not manifest_path.is_relative_to(root):
        raise UsageError(
            "manifest lies outside the repository, so its subjects cannot be named by repo-relative path",
            path=str(manifest_path),
            fix="attest a manifest inside the repository",
        )
    display = manifest_path.relative_to(root).as_posix()
    manifest, _ = load_manifest(manifest_path, display)
    signer = load_signer(key_path) if key_path is not None else None
    target = Path(os.path.abspath(target or default_attestation_path(manifest_path, signed=signer is not None)))
    subjects = [*_output_subjects(manifest, root, display), _subject(display, _digest(manifest_path, display))]
    if any(root / subject["name"] == target for subject in subjects):
        raise UsageError(
            "the attestation would overwrite one of its own subjects",
            path=os.path.relpath(target),
            fix="choose another --output",
        )
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": _predicate(manifest),
    }
    if signer is None:
        return Attestation(statement, statement, target, len(subjects), None)
    envelope = _sign(statement_bytes(statement), signer)
    return Attestation(envelope, statement, target, len(subjects), signer.public_key.keyid)


def statement_bytes(document: dict[str, Any]) -> bytes:
    """A JSON document as corpusprov writes evidence: keys sorted, 2-space indent, UTF-8, trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def attestation_bytes(built: Attestation) -> bytes:
    """The file's bytes: the statement, or the envelope holding it."""
    return statement_bytes(built.document)


def write_attestation(built: Attestation) -> None:
    """Write ``built`` to its target atomically (a failed write leaves no file)."""
    with atomic_writer(built.target) as handle:
        handle.write(attestation_bytes(built))


def _digest(path: Path, display: str) -> Digest:
    try:
        return hash_file(path)
    except FileNotFoundError:
        raise InputError("file does not exist", path=display, fix="`dvc pull` or `dvc checkout` it") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=display, fix="check its permissions") from None


def _subject(name: str, digest: Digest) -> dict[str, Any]:
    return {"name": name, "digest": {"md5": digest.md5, "sha256": digest.sha256}}


def _output_subjects(manifest: Manifest, root: Path, display: str) -> list[dict[str, Any]]:
    """Every output the manifest records, re-hashed and refused when it is not the recorded bytes."""
    subjects = []
    for entry in manifest.outputs:
        if entry.path.startswith(OUTSIDE_REPO):
            raise DataError(
                f"output {entry.path} was written outside the repository; its location is not recorded",
                path=display,
                fix="write every output inside the repository and re-run the stage",
            )
        digest = _digest(root / entry.path, entry.path)
        if (digest.sha256, digest.md5) != (entry.sha256, entry.md5):
            raise DataError(
                f"output is not the one {display} records (sha256 {digest.sha256[:12]}…, "
                f"the manifest says {entry.sha256[:12]}…)",
                path=entry.path,
                fix="restore it with `dvc checkout`, or re-run the stage",
            )
        subjects.append(_subject(entry.path, digest))
    return subjects


def _predicate(manifest: Manifest) -> dict[str, Any]:
    """The SLSA Provenance v1 predicate of ``manifest``."""
    params = manifest.params
    dependencies: list[dict[str, Any]] = [
        {
            "name": record.path,
            "digest": {"md5": record.md5, "sha256": record.sha256},
            "annotations": {"corpusprov.role": "input"},
        }
        for record in manifest.inputs
    ]
    if params.get("path") and params.get("sha256") and params.get("md5"):
        dependencies.append(
            {
                "name": params["path"],
                "digest": {"md5": params["md5"], "sha256": params["sha256"]},
                "annotations": {"corpusprov.role": "params"},
            }
        )
    dependencies.extend(_source(manifest.provenance))
    provenance = manifest.provenance
    internal: dict[str, Any] = {"policy": manifest.policy, "serialization": dict(manifest.serialization)}
    for key, value in (("dvcStage", provenance.get("dvc_stage")), ("dvcExperiment", provenance.get("dvc_exp_name"))):
        if value is not None:
            internal[key] = value
    # SLSA's builder.version is a string map: packages that were not installed (null) are left out.
    version = {name: value for name, value in provenance.get("packages", {}).items() if isinstance(value, str)}
    version[manifest.tool["name"]] = manifest.tool["version"]
    version["python"] = str(provenance.get("python", ""))
    metadata = {"startedOn": provenance["started_at_utc"], "finishedOn": provenance["finished_at_utc"]}
    if isinstance(provenance.get("invocation_id"), str):
        metadata["invocationId"] = provenance["invocation_id"]
    return {
        "buildDefinition": {
            "buildType": build_type(manifest.kind),
            "externalParameters": {
                "arguments": manifest.command.get("args", {}),
                "params": params.get("values", {}),
                "paramsGroup": params.get("group"),
            },
            "internalParameters": internal,
            "resolvedDependencies": dependencies,
        },
        "runDetails": {"builder": {"id": BUILDER_ID, "version": version}, "metadata": metadata},
    }


def _source(provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The source commit as a ResourceDescriptor, when the manifest recorded one."""
    git = provenance.get("git") or {}
    commit = git.get("commit")
    if not isinstance(commit, str):
        return []
    descriptor: dict[str, Any] = {
        "name": "source",
        "digest": {"gitCommit": commit},
        "annotations": {"corpusprov.role": "source", "dirty": git.get("dirty")},
    }
    # The manifest records whether there was a repository, not its URL (a URL can carry credentials).
    repository = git.get("repository")
    if isinstance(repository, str):
        descriptor["uri"] = f"git+{repository}@{commit}"
    return [descriptor]


def _sign(payload: bytes, signer: Any) -> dict[str, Any]:
    from securesystemslib.dsse import Envelope

    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    envelope.sign(signer)
    document: dict[str, Any] = envelope.to_dict()
    return document
