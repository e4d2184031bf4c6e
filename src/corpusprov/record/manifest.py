"""The manifest sidecar: a versioned, schema-validated record of how an output was made."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import orjson

from corpusprov.errors import CorpusprovError, DataError, InputError
from corpusprov.record.upstream import SIDECAR_SUFFIX, UpstreamLink

__all__ = [
    "MANIFEST_VERSION",
    "InputRecord",
    "Manifest",
    "OutputEntry",
    "accounting_problems",
    "load_manifest",
    "manifest_bytes",
    "manifest_schema",
    "parse_manifest",
    "schema_problems",
]

MANIFEST_VERSION: Final = 1

#: Deepest nesting a manifest may have. Ours are a few levels deep (params groups a few more);
#: a reader must not recurse a thousand levels into a hand-made one.
MAX_DEPTH: Final = 64


@dataclass(frozen=True)
class InputRecord:
    """One input shard as the manifest records it."""

    path: str
    """Repo-relative path."""
    arg: str
    """The command-line argument it came from."""
    relpath: str | None
    """Path inside the folder argument (DVC ``.dir`` relpath), or ``None``."""
    bytes: int
    """Size in bytes."""
    sha256: str
    """sha256 of the bytes read."""
    md5: str
    """md5 of the bytes read (DVC 3's ``hash: md5``)."""
    rows_read: int
    """Rows (non-blank lines) read."""
    counters: dict[str, int]
    """Per-input counters."""
    label_override: str | None = None
    """Corpus label forced on every row of this input (aggregate only)."""
    upstream: UpstreamLink | None = None
    """The manifest beside this shard (how the shard was made), when there is one."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``upstream_manifest`` only when there is one)."""
        document: dict[str, Any] = {
            "path": self.path,
            "arg": self.arg,
            "relpath": self.relpath,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "md5": self.md5,
            "rows_read": self.rows_read,
            "counters": dict(self.counters),
            "label_override": self.label_override,
        }
        if self.upstream is not None:
            document["upstream_manifest"] = self.upstream.to_dict()
        return document

    def dvc_listing(self) -> list[tuple[str, str]]:
        """``(relpath, md5)`` as DVC lists this input in its folder's ``.dir``: the shard, and the sidecar beside it."""
        name = self.relpath or self.path
        entries = [(name, self.md5)]
        if self.upstream is not None:
            entries.append((name + SIDECAR_SUFFIX, self.upstream.md5))
        return entries

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data["path"],
            data["arg"],
            data.get("relpath"),
            data["bytes"],
            data["sha256"],
            data["md5"],
            data["rows_read"],
            dict(data["counters"]),
            data.get("label_override"),
            UpstreamLink.from_dict(data["upstream_manifest"]) if data.get("upstream_manifest") else None,
        )


@dataclass(frozen=True)
class OutputEntry:
    """One output file as the manifest records it."""

    role: str
    """``corpus``, ``rejects`` or ``metrics``."""
    path: str
    """Repo-relative path."""
    bytes: int
    """Size in bytes."""
    sha256: str
    """sha256 of the bytes written."""
    md5: str
    """md5 of the bytes written."""
    rows: int | None
    """Lines written, for JSONL outputs."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "role": self.role,
            "path": self.path,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "md5": self.md5,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputEntry:
        """Inverse of :meth:`to_dict`."""
        return cls(data["role"], data["path"], data["bytes"], data["sha256"], data["md5"], data.get("rows"))


@dataclass(frozen=True)
class Manifest:
    """A whole manifest document."""

    kind: str
    """``merge`` or ``aggregate``."""
    tool: dict[str, str]
    """``name`` and ``version`` of the tool that wrote it."""
    command: dict[str, Any]
    """``argv`` and the parsed ``args``."""
    params: dict[str, Any]
    """The params file (path, hashes), the group name and its values as written."""
    policy: dict[str, Any]
    """The effective policy (defaults filled in)."""
    serialization: dict[str, str]
    """How the output bytes are written."""
    inputs: tuple[InputRecord, ...]
    """Every input shard, in reading order."""
    input_folders: tuple[dict[str, Any], ...]
    """Folder arguments with their DVC ``.dir`` md5."""
    outputs: tuple[OutputEntry, ...]
    """Every output but the manifest itself."""
    counters: dict[str, int]
    """Totals."""
    accounting: dict[str, Any]
    """Which counters add up to ``rows_in``."""
    provenance: dict[str, Any]
    """Run times, git state, DVC stage, software versions."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Kind-specific sections (e.g. aggregate's scale conversions)."""
    manifest_version: int = MANIFEST_VERSION
    """Document version."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        document: dict[str, Any] = {
            "manifest_version": self.manifest_version,
            "kind": self.kind,
            "tool": dict(self.tool),
            "command": self.command,
            "params": self.params,
            "policy": self.policy,
            "serialization": dict(self.serialization),
            "inputs": [record.to_dict() for record in self.inputs],
            "input_folders": [dict(folder) for folder in self.input_folders],
            "outputs": [entry.to_dict() for entry in self.outputs],
            "counters": dict(self.counters),
            "accounting": self.accounting,
            "provenance": self.provenance,
        }
        document.update(self.extra)
        return document

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Inverse of :meth:`to_dict` (validate against the schema first)."""
        known = {
            "manifest_version",
            "kind",
            "tool",
            "command",
            "params",
            "policy",
            "serialization",
            "inputs",
            "input_folders",
            "outputs",
            "counters",
            "accounting",
            "provenance",
        }
        return cls(
            kind=data["kind"],
            tool=data["tool"],
            command=data["command"],
            params=data["params"],
            policy=data["policy"],
            serialization=data["serialization"],
            inputs=tuple(InputRecord.from_dict(item) for item in data["inputs"]),
            input_folders=tuple(data.get("input_folders", [])),
            outputs=tuple(OutputEntry.from_dict(item) for item in data["outputs"]),
            counters=dict(data["counters"]),
            accounting=data["accounting"],
            provenance=data["provenance"],
            extra={key: value for key, value in data.items() if key not in known},
            manifest_version=data["manifest_version"],
        )

    def output(self, role: str) -> OutputEntry | None:
        """The output with ``role``, if any."""
        return next((entry for entry in self.outputs if entry.role == role), None)


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as written: indented, keys sorted, UTF-8, trailing newline, paths and argv redacted."""
    from corpusprov.record.redact import redact_document

    return orjson.dumps(
        redact_document(manifest.to_dict()),
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
    )


@cache
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema shipped in the package."""
    text = resources.files("corpusprov").joinpath("schemas/manifest-v1.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_problems(document: Any) -> list[str]:
    """Schema violations as ``json.path: message`` lines (empty when valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(manifest_schema())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda err: list(err.absolute_path)):
        where = (
            "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
            or "(top level)"
        )
        problems.append(f"{where.lstrip('.')}: {error.message}")
    return problems


def accounting_problems(manifest: Manifest, accounting: dict[str, Any] | None = None) -> list[str]:
    """Where the counters do not add up: totals and each input.

    ``accounting`` is the equation to check; pass the one our code defines for the manifest's
    kind (``MERGE_ACCOUNTING``...), since the one a manifest carries is only its claim.
    """
    problems: list[str] = []
    accounting = manifest.accounting if accounting is None else accounting
    parts = [*accounting["out"], *accounting["duplicates"], *accounting["rejected"]]

    def check(where: str, counters: dict[str, int]) -> None:
        expected = counters.get(accounting["in"], 0)
        found = sum(counters.get(name, 0) for name in parts)
        if expected != found:
            problems.append(f"{where}: {accounting['in']} = {expected} but {' + '.join(parts)} = {found}")

    check("total", manifest.counters)
    for record in manifest.inputs:
        check(record.path, record.counters)
    for name in [accounting["in"], *parts]:
        summed = sum(record.counters.get(name, 0) for record in manifest.inputs)
        if summed != manifest.counters.get(name, 0):
            problems.append(f"total {name} = {manifest.counters.get(name, 0)} but the inputs add up to {summed}")
    return problems


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether ``document`` nests lists/objects deeper than ``limit`` (no recursion)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_manifest(
    raw: bytes, display: str, error: type[CorpusprovError] = DataError
) -> tuple[Manifest, dict[str, Any]]:
    """Parse and schema-check manifest bytes (untrusted); raise ``error`` naming ``display``."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"manifest is not valid JSON: {exc}", path=display, fix="restore it with `dvc checkout`") from None
    if _depth_exceeds(document, MAX_DEPTH):
        raise error(
            f"manifest is nested more than {MAX_DEPTH} levels deep: not a corpusprov manifest",
            path=display,
            fix="restore it with `dvc checkout` or re-run the stage",
        )
    problems = schema_problems(document)
    if problems:
        raise error(
            f"manifest does not match the schema: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            path=display,
            fix="restore it with `dvc checkout` or re-run the stage",
        )
    return Manifest.from_dict(document), document


def load_manifest(path: Path, display: str) -> tuple[Manifest, dict[str, Any]]:
    """Read and schema-check a manifest; return the model and the raw document."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            "manifest does not exist", path=display, fix="run the stage (`dvc repro`) or `dvc pull` it"
        ) from None
    except IsADirectoryError:
        raise InputError(
            "manifest path is a folder", path=display, fix="give the path of a *.manifest.json file"
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot read manifest: {exc.strerror or exc}", path=display, fix="check the path and its permissions"
        ) from None
    return parse_manifest(raw, display)
