"""dvc.yaml, dvc.lock and .dvc files read as untrusted input: bounded YAML, checked shapes, safe paths."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from corpusprov.errors import DvcFileError, UsageError, escaped
from corpusprov.params.plaindata import NODE_BUDGET
from corpusprov.prove.evidencecheck import EVIDENCE_SUFFIXES
from corpusprov.prove.findings import MANIFEST_SUFFIX

__all__ = [
    "StagePlan",
    "is_repo_relative",
    "load_dvc_file",
    "load_dvc_lock",
    "load_dvc_yaml",
    "plan_stages",
    "read_yaml",
]

_DRIVE: Final = re.compile(r"^[A-Za-z]:[\\/]")


def is_repo_relative(path: object) -> bool:
    """A non-empty POSIX path that stays inside the repository: not absolute, no ``..``, no ``~``."""
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        return False
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        return False
    return ".." not in path.split("/")


def _expanded_size(root: Node, display: str) -> tuple[int, int]:
    """Nodes the document has once every alias is expanded (without expanding them), and distinct nodes."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            sizes[key] = min(1 + sum(sizes[id(child)] for child in children), NODE_BUDGET + 1)
            continue
        if key in sizes:
            continue
        if key in active:
            raise DvcFileError("a YAML alias refers to itself", path=display, fix=f"restore {display} from git")
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)], len(sizes)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def read_yaml(path: Path, display: str) -> Any:
    """Load a YAML file safely and within the params node budget; ``None`` when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DvcFileError(
            f"cannot read {display}: {reason}", path=display, fix=f"restore {display} from git"
        ) from None
    yaml = YAML(typ="safe", pure=True)
    try:
        node = yaml.compose(text)
        expanded, distinct = _expanded_size(node, display) if node is not None else (0, 0)
        if expanded > NODE_BUDGET:
            how = "once its YAML aliases are expanded" if expanded > distinct else "(a very long list or mapping)"
            raise DvcFileError(
                f"{display} holds more than {NODE_BUDGET} values {how}",
                path=display,
                fix=f"restore {display} from git (DVC writes a few entries per stage)",
            )
        return yaml.load(text)
    except DvcFileError:
        raise
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DvcFileError(
            f"malformed YAML: {first}", path=display, fix=f"fix {display} (restore it from git)"
        ) from None
    except RecursionError:
        raise DvcFileError("YAML nested too deeply", path=display, fix=f"restore {display} from git") from None
    except (ValueError, TypeError, IndexError, AttributeError, KeyError) as exc:
        # ruamel raises these for built-in tags with impossible values (`!!int abc`).
        raise DvcFileError(
            f"malformed YAML value: {exc or type(exc).__name__}",
            path=display,
            fix=f"fix {display} (restore it from git)",
        ) from None


def _shape(display: str, where: str, expected: str) -> DvcFileError:
    return DvcFileError(
        f"{where} must be {expected}", path=display, fix=f"restore {display} from git (or let DVC rewrite it)"
    )


def _mapping(value: Any, display: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise _shape(display, where, "a mapping with string keys")
    return value


def _list(value: Any, display: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _shape(display, where, "a list")
    return value


def _path(value: Any, display: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _shape(display, where, "a path (a non-empty string)")
    if not is_repo_relative(value):
        raise DvcFileError(
            f"{where} {value!r} leaves the repository (absolute, `~` or `..`)",
            path=display,
            fix=f"DVC paths are relative to the repository and stay inside it; restore {display} from git",
        )
    return value


def _entries(value: Any, display: str, where: str) -> list[dict[str, Any]]:
    """A dvc.lock / .dvc ``deps`` or ``outs`` list: mappings with a safe ``path``, string hashes."""
    entries = []
    for index, entry in enumerate(_list(value, display, where)):
        at = f"{where}[{index}]"
        entry = _mapping(entry, display, at)
        _path(entry.get("path"), display, f"{at}.path")
        for name in ("md5", "hash"):
            if name in entry and not isinstance(entry[name], str | None):
                raise _shape(display, f"{at}.{name}", "a string")
        entries.append(entry)
    return entries


def load_dvc_lock(root: Path) -> dict[str, Any] | None:
    """``dvc.lock`` with checked shapes, or ``None`` when there is none."""
    display = "dvc.lock"
    data = read_yaml(root / display, display)
    if data is None:
        return None
    data = _mapping(data, display, "the top level")
    stages = _mapping(data.get("stages"), display, "stages")
    for name, stage in stages.items():
        stage = _mapping(stage, display, f"stages.{name}")
        stage["deps"] = _entries(stage.get("deps"), display, f"stages.{name}.deps")
        stage["outs"] = _entries(stage.get("outs"), display, f"stages.{name}.outs")
        params = _mapping(stage.get("params"), display, f"stages.{name}.params")
        for file_name, groups in params.items():
            _path(file_name, display, f"stages.{name}.params key")
            _mapping(groups, display, f"stages.{name}.params.{file_name}")
        stage["params"] = params
        stages[name] = stage
    data["stages"] = stages
    return data


def _declared(value: Any, display: str, where: str) -> list[str]:
    """Paths of a dvc.yaml ``outs``/``metrics``/``deps`` list: strings or one-key mappings."""
    paths = []
    for index, entry in enumerate(_list(value, display, where)):
        at = f"{where}[{index}]"
        if isinstance(entry, dict):
            if len(entry) != 1:
                raise _shape(display, at, "a path or a one-key mapping `PATH: {options}`")
            ((key, options),) = entry.items()
            _mapping(options, display, f"{at}.{key}")
            entry = key
        paths.append(_path(entry, display, at))
    return paths


def _declared_params(value: Any, display: str, where: str) -> dict[str, list[str]]:
    """dvc.yaml ``params``: group names (of params.yaml) or ``FILE: [groups]`` mappings."""
    declared: dict[str, list[str]] = {}
    for index, entry in enumerate(_list(value, display, where)):
        at = f"{where}[{index}]"
        if isinstance(entry, str):
            declared.setdefault("params.yaml", []).append(entry)
        elif isinstance(entry, dict):
            for file_name, groups in _mapping(entry, display, at).items():
                _path(file_name, display, f"{at} key")
                names = _list(groups, display, f"{at}.{file_name}")
                if not all(isinstance(item, str) for item in names):
                    raise _shape(display, f"{at}.{file_name}", "a list of group names")
                declared.setdefault(file_name, []).extend(names)
        else:
            raise _shape(display, at, "a group name or `FILE: [groups]`")
    return declared


def _interpolated(value: Any, item: str) -> Any:
    """``value`` with ``${item}`` replaced in every string, at any depth."""
    if isinstance(value, str):
        return value.replace("${item}", item)
    if isinstance(value, list):
        return [_interpolated(entry, item) for entry in value]
    if isinstance(value, dict):
        return {_interpolated(key, item): _interpolated(entry, item) for key, entry in value.items()}
    return value


def _expanded(stages: dict[str, Any], display: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each stage, with a ``foreach`` over a list of names expanded as DVC names them (``stage@item``)."""
    for name, stage in stages.items():
        stage = _mapping(stage, display, f"stages.{name}")
        if "foreach" not in stage:
            yield str(name), stage
            continue
        items = _list(stage["foreach"], display, f"stages.{name}.foreach")
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in items):
            raise _shape(display, f"stages.{name}.foreach", "a list of names (corpusprov reads no other foreach)")
        body = _mapping(stage.get("do"), display, f"stages.{name}.do")
        for item in items:
            yield f"{name}@{item}", _interpolated(body, str(item))


def load_dvc_yaml(root: Path) -> dict[str, dict[str, Any]] | None:
    """Stages of ``dvc.yaml`` as ``{name: {"outs": [...], "metrics": [...], "deps": [...], "params": {...}}}``."""
    display = "dvc.yaml"
    data = read_yaml(root / display, display)
    if data is None:
        return None
    data = _mapping(data, display, "the top level")
    stages: dict[str, dict[str, Any]] = {}
    for name, stage in _expanded(_mapping(data.get("stages"), display, "stages"), display):
        stages[name] = {
            "outs": _declared(stage.get("outs"), display, f"stages.{name}.outs"),
            "metrics": _declared(stage.get("metrics"), display, f"stages.{name}.metrics"),
            "deps": _declared(stage.get("deps"), display, f"stages.{name}.deps"),
            "params": _declared_params(stage.get("params"), display, f"stages.{name}.params"),
        }
    return stages


def load_dvc_file(path: Path, display: str) -> dict[str, Any]:
    """A ``.dvc`` file with checked shapes: ``outs`` (and ``deps``, with ``repo`` for imports)."""
    data = _mapping(read_yaml(path, display), display, "the top level")
    data["outs"] = _entries(data.get("outs"), display, "outs")
    data["deps"] = _entries(data.get("deps"), display, "deps")
    for index, dep in enumerate(data["deps"]):
        if "repo" not in dep:
            continue
        repo = _mapping(dep["repo"], display, f"deps[{index}].repo")
        if not isinstance(repo.get("url"), str):
            raise _shape(display, f"deps[{index}].repo.url", "a string")
        if not isinstance(repo.get("rev_lock"), str | None):
            raise _shape(display, f"deps[{index}].repo.rev_lock", "a string")
    return data


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
    evidence: tuple[str, ...] = ()
    """Outs that vouch for other files' bytes (``*.croissant.json``, ``*.intoto.json``)."""


def plan_stages(root: Path, only: Sequence[str] = (), *, evidence: bool = False) -> tuple[list[StagePlan], list[str]]:
    """Stages of ``dvc.yaml`` whose outs include a manifest (``evidence``: or an evidence file), and the others."""
    stages = load_dvc_yaml(root)
    if stages is None:
        raise UsageError(
            "no dvc.yaml here",
            path="dvc.yaml",
            fix="run it inside the corpus repository; in a repository that `dvc import`s "
            "a corpus and its manifest, run `corpusprov verify-import`",
        )

    def chosen(name: str) -> bool:
        """Named, or one of a named foreach stage's expansions (``merge-host`` means every ``merge-host@...``)."""
        return not only or name in only or name.split("@", 1)[0] in only

    unknown = [name for name in only if not any(name in (stage, stage.split("@", 1)[0]) for stage in stages)]
    if unknown:
        raise UsageError(
            f"no stage {unknown[0]!r} in dvc.yaml",
            path="dvc.yaml",
            fix=f"stages: {', '.join(escaped(name) for name in stages) or '(none)'}",
        )
    plans: list[StagePlan] = []
    skipped: list[str] = []
    for name, stage in stages.items():
        if not chosen(name):
            continue
        outs = [*stage["outs"], *stage["metrics"]]
        manifests = tuple(path for path in outs if path.endswith(MANIFEST_SUFFIX))
        vouching = tuple(path for path in outs if path.endswith(EVIDENCE_SUFFIXES)) if evidence else ()
        if manifests or vouching:
            declared = tuple((file_name, group) for file_name, groups in stage["params"].items() for group in groups)
            plans.append(StagePlan(str(name), manifests, tuple(outs), declared, vouching))
        else:
            skipped.append(str(name))
    return plans, skipped
