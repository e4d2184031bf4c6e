"""Upstream manifests: the sidecar beside an input shard that says how that shard was made."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from corpusprov.errors import InputError

__all__ = [
    "CHAIN_FIGURES",
    "SIDECAR_SUFFIX",
    "UpstreamLink",
    "chain_figures",
    "find_upstream",
    "upstream_shape_problem",
]

#: A shard ``x.jsonl`` made by a tool that keeps evidence has ``x.jsonl.manifest.json`` beside it.
SIDECAR_SUFFIX: Final = ".manifest.json"

#: Upstream manifests are small documents; a sidecar past this is not one.
MAX_SIDECAR_BYTES: Final = 64 << 20


@dataclass(frozen=True)
class UpstreamLink:
    """The manifest beside an input shard, as the downstream manifest records it."""

    path: str
    """Repo-relative path of the upstream manifest."""
    sha256: str
    """sha256 of the upstream manifest's bytes, as this build read them."""
    md5: str
    """md5 of the same bytes: DVC hashes the sidecar into a folder dep's ``.dir`` listing."""
    kind: str
    """The upstream manifest's ``kind`` (``merge``, ``aggregate``, or another tool's word)."""

    def to_dict(self) -> dict[str, str]:
        """JSON form (the input record's ``upstream_manifest``)."""
        return {"path": self.path, "sha256": self.sha256, "md5": self.md5, "kind": self.kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UpstreamLink:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["path"]), str(data["sha256"]), str(data["md5"]), str(data["kind"]))


def _digests(items: Any) -> bool:
    return isinstance(items, list) and all(
        isinstance(item, dict) and isinstance(item.get("sha256"), str) for item in items
    )


def upstream_shape_problem(document: Any) -> str | None:
    """Why ``document`` is not a manifest a chain can follow (``kind``, ``inputs[].sha256``, ``outputs[].sha256``)."""
    if not isinstance(document, dict):
        return "not a JSON object"
    if not isinstance(document.get("kind"), str) or not document["kind"]:
        return "no `kind`"
    if not _digests(document.get("inputs")):
        return "no `inputs` list whose items carry a `sha256`"
    if not _digests(document.get("outputs")):
        return "no `outputs` list whose items carry a `sha256`"
    return None


def _load(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):  # TypeError: nested past orjson's depth limit
        return None


def find_upstream(shard: Path, display: str) -> UpstreamLink | None:
    """The manifest beside ``shard`` (opened at ``shard``, named ``display``), or ``None`` when there is none.

    A sidecar that is there but is not a manifest is an error, not a missing link: the
    evidence chain would otherwise stop at a file that claims to continue it.
    """
    sidecar = shard.with_name(shard.name + SIDECAR_SUFFIX)
    name = display + SIDECAR_SUFFIX
    fix = f"restore it (`dvc checkout`), or move it away if {display} has no upstream manifest"
    try:
        if not sidecar.is_file():
            return None
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise InputError("upstream manifest is too large to be a manifest", path=name, fix=fix)
        raw = sidecar.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the upstream manifest: {exc.strerror or exc}", path=name) from None
    document = _load(raw)
    problem = upstream_shape_problem(document)
    if problem is not None:
        raise InputError(f"upstream manifest is not a manifest ({problem})", path=name, fix=fix)
    digests = hashlib.sha256(raw).hexdigest(), hashlib.md5(raw).hexdigest()  # noqa: S324 -- DVC's md5
    return UpstreamLink(name, *digests, str(document["kind"]))


#: The figures a chain adds up: what entered it, what it dropped as duplicates or rejects.
CHAIN_FIGURES: Final = ("in", "dups", "rejected")


def _figures(document: dict[str, Any]) -> dict[str, int] | None:
    """``in``/``dups``/``rejected`` of one manifest of ours (its accounting says which counters), else ``None``."""
    counters, accounting = document.get("counters"), document.get("accounting")
    if not isinstance(counters, dict) or not isinstance(accounting, dict):
        return None
    try:
        return {
            "in": int(counters[accounting["in"]]),
            "dups": sum(int(counters[name]) for name in accounting["duplicates"]),
            "rejected": sum(int(counters[name]) for name in accounting["rejected"]),
        }
    except (KeyError, TypeError, ValueError):
        return None


def chain_figures(document: dict[str, Any], base: Path, depth: int = 0) -> dict[str, int] | None:
    """The figures of a build and of the builds of its kind behind it: rows that entered the chain
    (read from shards without such a manifest), and duplicates and rejects at every level.

    Each input that records an upstream manifest of the same kind, with the bytes it recorded, counts
    through that build; any other input counts its own rows. ``base`` is where the paths are relative to.
    """
    own = _figures(document)
    if own is None or depth > 64:
        return own
    totals = dict(own)
    for record in document.get("inputs") or []:
        link = record.get("upstream_manifest") if isinstance(record, dict) else None
        if not isinstance(link, dict) or link.get("kind") != document.get("kind"):
            continue
        try:
            raw = (base / str(link["path"])).read_bytes()
        except OSError:
            continue
        if hashlib.sha256(raw).hexdigest() != link.get("sha256"):
            continue
        upstream = _load(raw)
        behind = chain_figures(upstream, base, depth + 1) if isinstance(upstream, dict) else None
        rows = record.get("rows_read")
        if behind is None or not isinstance(rows, int):
            continue
        totals["in"] += behind["in"] - rows
        totals["dups"] += behind["dups"]
        totals["rejected"] += behind["rejected"]
    return totals
