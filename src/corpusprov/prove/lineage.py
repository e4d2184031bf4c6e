"""Lineage: the chain of manifests from a training file down to shards without one, and its links checked."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from corpusprov.errors import InputError
from corpusprov.io.hashing import hash_file
from corpusprov.io.inputs import resolves_inside
from corpusprov.prove.findings import Checker
from corpusprov.record.upstream import SIDECAR_SUFFIX, upstream_shape_problem

__all__ = ["LineageNode", "ManifestInfo", "check_links", "lineage", "params_digest"]

#: Deepest chain followed: real chains are a few levels; a loop of links must not run forever.
MAX_LEVELS: Final = 64

CAUSE_LINK_MANIFEST: Final = (
    "the upstream manifest changed after this build read it: the upstream stage re-ran "
    "(run `dvc repro` for this one too) or the manifest was edited (restore it with `dvc checkout`)"
)
CAUSE_LINK_MISSING: Final = "the upstream manifest was deleted or not pulled (`dvc pull` / `dvc checkout`)"
CAUSE_LINK_BYTES: Final = (
    "this build read bytes the upstream manifest does not describe: the shard was replaced "
    "after its upstream build, or the sidecar belongs to another build"
)
CAUSE_LINK_OUTPUT: Final = (
    "the upstream output on disk is not the bytes its manifest records (and this build read): "
    "edited after the upstream build, or a corrupted copy (restore it with `dvc checkout`)"
)
CAUSE_LINK_SHAPE: Final = "the upstream manifest is no longer a manifest (edited by hand; restore it)"


def params_digest(document: dict[str, Any]) -> str | None:
    """Short sha256 of the params group's values (sorted keys), else of the params file; ``None`` if neither."""
    params = document.get("params")
    if not isinstance(params, dict):
        return None
    if "values" in params:
        try:
            encoded = orjson.dumps(params["values"], option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return hashlib.sha256(encoded).hexdigest()[:12]
    digest = params.get("sha256")
    return digest[:12] if isinstance(digest, str) else None


@dataclass(frozen=True)
class ManifestInfo:
    """What one manifest in the chain says about its build."""

    path: str
    """Repo-relative path of the manifest."""
    kind: str
    """``merge``, ``aggregate``, or another tool's word."""
    tool: str
    """``name version`` of the tool that wrote it."""
    params_digest: str | None
    """See :func:`params_digest`."""
    rows_in: int | None
    """Rows read, when the manifest counts them."""
    rows_out: int | None
    """Rows written, when the manifest counts them."""


@dataclass(frozen=True)
class LineageNode:
    """A file in the chain: the training file, an intermediate output, or a shard without a manifest."""

    path: str
    """Repo-relative path."""
    sha256: str
    """The bytes the downstream build read (for the top node: the bytes its manifest records)."""
    rows: int | None
    """Rows, as the manifest that names the file counts them."""
    made_by: ManifestInfo | None = None
    """The manifest that says how the file was made; ``None`` for a shard without one."""
    problem: str | None = None
    """Why the chain cannot be followed past this file (a missing or changed upstream manifest)."""
    inputs: tuple[LineageNode, ...] = field(default_factory=tuple)
    """What the build read, in reading order."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json``."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "manifest": None
            if self.made_by is None
            else {
                "path": self.made_by.path,
                "kind": self.made_by.kind,
                "tool": self.made_by.tool,
                "params_digest": self.made_by.params_digest,
                "rows_in": self.made_by.rows_in,
                "rows_out": self.made_by.rows_out,
            },
            "problem": self.problem,
            "inputs": [node.to_dict() for node in self.inputs],
        }

    def levels(self) -> int:
        """Manifests on the longest path down from here."""
        below = max((node.levels() for node in self.inputs), default=0)
        return below + (self.made_by is not None)


def _read(root: Path, path: str) -> tuple[bytes | None, str | None]:
    """A manifest's bytes, or why they cannot be read here."""
    target = root / path
    if not resolves_inside(target, root):
        return None, "leads outside the repository"
    try:
        return target.read_bytes(), None
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"


def _document(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        document = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return None, "not valid JSON"
    problem = upstream_shape_problem(document)
    return (document, None) if problem is None else (None, problem)


def _count(counters: Any, name: str) -> int | None:
    value = counters.get(name) if isinstance(counters, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _info(path: str, document: dict[str, Any]) -> ManifestInfo:
    tool = document.get("tool")
    name = f"{tool.get('name', '?')} {tool.get('version', '?')}" if isinstance(tool, dict) else "unknown tool"
    counters = document.get("counters")
    rows_in, rows_out = _count(counters, "rows_in"), _count(counters, "rows_out")
    return ManifestInfo(path, str(document["kind"]), name, params_digest(document), rows_in, rows_out)


def _link(record: dict[str, Any]) -> dict[str, Any] | None:
    link = record.get("upstream_manifest")
    if isinstance(link, dict) and isinstance(link.get("path"), str) and isinstance(link.get("sha256"), str):
        return link
    return None


def _inputs(root: Path, document: dict[str, Any], seen: frozenset[str], level: int) -> tuple[LineageNode, ...]:
    nodes = []
    for record in document["inputs"]:
        path = str(record.get("path", "?"))
        sha256 = str(record["sha256"])
        rows = _count(record, "rows_read")
        link = _link(record)
        if link is None:
            nodes.append(LineageNode(path, sha256, rows))
            continue
        nodes.append(_upstream(root, path, sha256, rows, link, seen, level))
    return tuple(nodes)


def _upstream(
    root: Path, path: str, sha256: str, rows: int | None, link: dict[str, Any], seen: frozenset[str], level: int
) -> LineageNode:
    """The node for an input that records the manifest beside it."""
    where = link["path"]
    if where in seen or level >= MAX_LEVELS:
        return LineageNode(path, sha256, rows, problem=f"{where}: the chain loops back or is deeper than {MAX_LEVELS}")
    raw, unreadable = _read(root, where)
    if raw is None:
        return LineageNode(path, sha256, rows, problem=f"upstream manifest {where} {unreadable}")
    if hashlib.sha256(raw).hexdigest() != link["sha256"]:
        return LineageNode(path, sha256, rows, problem=f"upstream manifest {where} changed since this build read it")
    document, problem = _document(raw)
    if document is None:
        return LineageNode(path, sha256, rows, problem=f"upstream manifest {where}: {problem}")
    produced = next((entry for entry in document["outputs"] if entry["sha256"] == sha256), None)
    return LineageNode(
        path,
        sha256,
        _count(produced, "rows") if produced is not None else rows,
        _info(where, document),
        None if produced is not None else f"upstream manifest {where} does not list the bytes this build read",
        _inputs(root, document, seen | {where}, level + 1),
    )


def _manifest_path(root: Path, path: str) -> str:
    """The manifest for ``path``: itself when it is one, else the sidecar beside it."""
    if path.endswith(SIDECAR_SUFFIX):
        return path
    if (root / (path + SIDECAR_SUFFIX)).is_file() or not (root / path).is_file():
        return path + SIDECAR_SUFFIX
    fix = "give an output corpusprov (or a tool like it) made"
    raise InputError("no manifest beside this file", path=path + SIDECAR_SUFFIX, fix=fix)


def lineage(root: Path, path: str) -> LineageNode:
    """The chain from ``path`` (an output, or its manifest; repo-relative) down to shards without a manifest."""
    manifest = _manifest_path(root, path)
    raw, unreadable = _read(root, manifest)
    if raw is None:
        raise InputError(f"manifest {unreadable}", path=manifest, fix="run the stage (`dvc repro`) or `dvc pull` it")
    document, problem = _document(raw)
    if document is None:
        raise InputError(f"not a manifest ({problem})", path=manifest, fix="restore it with `dvc checkout`")
    outputs = document["outputs"]
    top = next((entry for entry in outputs if entry.get("role") == "corpus"), outputs[0] if outputs else None)
    top_path = str(top.get("path", "?")) if top else manifest.removesuffix(SIDECAR_SUFFIX)
    return LineageNode(
        top_path,
        str(top["sha256"]) if top else "",
        _count(top, "rows") if top else None,
        _info(manifest, document),
        None,
        _inputs(root, document, frozenset({manifest}), 1),
    )


def check_links(check: Checker, document: dict[str, Any], manifest_path: str) -> None:
    """``verify --deep``: every upstream link of a manifest, and theirs, down the chain."""
    _check_links(check, document, frozenset({manifest_path}))


def _check_links(check: Checker, document: dict[str, Any], seen: frozenset[str]) -> None:
    for record in document.get("inputs") or []:
        link = _link(record) if isinstance(record, dict) else None
        if link is None:
            continue
        upstream = link["path"]
        label = f"lineage link {Path(upstream).name}"
        if upstream in seen or len(seen) >= MAX_LEVELS:
            check.compare(label, "a chain that ends", "a loop back to a manifest above", upstream, CAUSE_LINK_SHAPE)
            continue
        raw, unreadable = _read(check.root, upstream)
        if raw is None:
            check.compare(f"{label}: manifest exists", "a file", unreadable, upstream, CAUSE_LINK_MISSING)
            continue
        found = hashlib.sha256(raw).hexdigest()
        if not check.compare(f"{label}: manifest sha256", link["sha256"], found, upstream, CAUSE_LINK_MANIFEST):
            continue
        upstream_doc, problem = _document(raw)
        if upstream_doc is None:
            check.compare(f"{label}: manifest shape", "a manifest", problem, upstream, CAUSE_LINK_SHAPE)
            continue
        produced = next((entry for entry in upstream_doc["outputs"] if entry["sha256"] == record["sha256"]), None)
        if produced is None:
            check.compare(
                f"{label}: upstream output is the bytes read",
                f"an output with sha256 {record['sha256']}",
                "none",
                str(record.get("path")),
                CAUSE_LINK_BYTES,
            )
            continue
        check.checks += 1
        _check_upstream_output(check, label, produced)
        _check_links(check, upstream_doc, seen | {upstream})


def _check_upstream_output(check: Checker, label: str, produced: dict[str, Any]) -> None:
    """The upstream output as it is on disk now, against what its manifest records and this build read."""
    where = str(produced.get("path", "?"))
    target = check.root / where
    if not resolves_inside(target, check.root) or not target.is_file():
        # An upstream built elsewhere (shards imported with their sidecars) need not be here.
        check.checks += 1
        return
    digest = hash_file(target)
    what = f"{label}: upstream output sha256 on disk"
    check.compare(what, produced["sha256"], digest.sha256, where, CAUSE_LINK_OUTPUT)
