"""What evidence files claim about other files' bytes (Croissant, in-toto), checked against the disk."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path, PurePosixPath
from typing import Any, Final

import orjson

from corpusprov.prove.findings import Checker

__all__ = ["EVIDENCE_SUFFIXES", "check_evidence", "digest_claims", "is_evidence"]

#: The files `corpusprov croissant` and `corpusprov attest` write beside a corpus.
EVIDENCE_SUFFIXES: Final = (".croissant.json", ".intoto.json", ".intoto.dsse.json")

CAUSE_EVIDENCE_STALE: Final = (
    "the evidence file names bytes that are not on disk: the corpus changed after it was written "
    "(run `dvc repro`), or it was edited (restore it with `dvc checkout`)"
)
CAUSE_EVIDENCE_SHAPE: Final = "the evidence file is not what corpusprov writes (edited by hand; restore it)"


def is_evidence(path: str) -> bool:
    """Whether a stage out is an evidence file verify should check."""
    return path.endswith(EVIDENCE_SUFFIXES)


def _statement(document: Any) -> Any:
    """The in-toto Statement itself, unwrapped from a DSSE envelope when it is one."""
    if isinstance(document, dict) and isinstance(document.get("payload"), str):
        try:
            return orjson.loads(base64.b64decode(document["payload"], validate=True))
        except (binascii.Error, ValueError, TypeError):
            return None
    return document


def digest_claims(root: Path, path: str) -> list[tuple[str, str]] | str:
    """``(repo-relative file, sha256)`` for every file ``path`` vouches for, or why it cannot be read."""
    try:
        document = orjson.loads((root / path).read_bytes())
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    except (orjson.JSONDecodeError, TypeError):
        return "not valid JSON"
    claims: list[tuple[str, str]] = []
    if path.endswith(".croissant.json"):
        folder = PurePosixPath(path).parent
        for item in document.get("distribution") or [] if isinstance(document, dict) else []:
            url, sha256 = (item.get("contentUrl"), item.get("sha256")) if isinstance(item, dict) else (None, None)
            if isinstance(url, str) and isinstance(sha256, str) and "://" not in url:
                claims.append((os.path.normpath(str(folder / url)), sha256))
    else:
        statement = _statement(document)
        subjects = statement.get("subject") if isinstance(statement, dict) else None
        for subject in subjects if isinstance(subjects, list) else []:
            digest = subject.get("digest") if isinstance(subject, dict) else None
            if isinstance(subject.get("name"), str) and isinstance(digest, dict) and "sha256" in digest:
                claims.append((subject["name"], str(digest["sha256"])))
    return claims or "names no file with a sha256"


def check_evidence(check: Checker, path: str) -> None:
    """Every sha256 an evidence out records, against the bytes on disk now."""
    claims = digest_claims(check.root, path)
    if isinstance(claims, str):
        check.compare("evidence file", "Croissant or in-toto JSON naming files", claims, path, CAUSE_EVIDENCE_SHAPE)
        return
    for name, sha256 in claims:
        digest = check.digest(name)
        found = digest.sha256 if digest is not None else "missing (or outside the repository)"
        check.compare(f"sha256 {PurePosixPath(path).name} records", sha256, found, name, CAUSE_EVIDENCE_STALE)
