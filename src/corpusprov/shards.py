"""Swap the sample stage for your own shard folders: drop `sample` from dvc.yaml, point merge/aggregate at them."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import FoldedScalarString

from corpusprov.errors import UsageError
from corpusprov.io.fsutil import atomic_writer

__all__ = ["SAMPLE_STAGE", "ShardsPlan", "use_shards"]

#: The stage that writes the bundled synthetic shards.
SAMPLE_STAGE: Final = "sample"


@dataclass(frozen=True)
class ShardsPlan:
    """What ``use_shards`` changed, and the folders DVC should now track (``dvc add``)."""

    removed_sample: bool
    """The sample stage was in dvc.yaml and is gone (with its dvc.lock entry)."""
    inputs: dict[str, str]
    """Stage -> the shard folder it reads."""
    changed: tuple[str, ...]
    """Files rewritten (``dvc.yaml``, ``dvc.lock``)."""
    removed_feeders: tuple[str, ...] = ()
    """Stages that wrote the folder a stage no longer reads (the demo's per-host merges), removed too."""


def _yaml() -> YAML:
    # The indentation DVC and this template write, so an untouched stage round-trips byte for byte.
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(path: Path) -> Any:
    try:
        return _yaml().load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise UsageError(
            f"cannot read {path.name}: {str(exc).splitlines()[0]}",
            path=path.name,
            fix=f"fix {path.name} (restore it from git)",
        ) from None


def _dump(path: Path, document: Any) -> None:
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    with atomic_writer(path) as handle:
        handle.write(buffer.getvalue().encode("utf-8"))


def _data_dep(stage: dict[str, Any], name: str) -> str:
    """The stage's shard folder: its one dep that is not the package code."""
    deps = _data_deps(stage)
    if len(deps) != 1:
        raise UsageError(
            f"stage {name!r} has {len(deps)} data deps ({', '.join(deps) or 'none'}); expected one",
            path="dvc.yaml",
            fix=f"edit the {name} stage in dvc.yaml by hand",
        )
    return deps[0]


def _replace_token(cmd: Any, old: str, new: str, name: str) -> Any:
    """``cmd`` with the whole word ``old`` replaced, keeping a folded string's line breaks."""
    text = str(cmd)
    words = text.split(" ")
    if old not in words:
        raise UsageError(
            f"stage {name!r}: its cmd does not name its dep {old}",
            path="dvc.yaml",
            fix=f"edit the {name} stage in dvc.yaml by hand",
        )
    replaced_at: list[int] = []
    offset = 0
    for index, word in enumerate(words):
        if word == old:
            replaced_at.append(offset)
            words[index] = new
        offset += len(word) + 1
    result = " ".join(words)
    # A folded string breaks at recorded offsets; those after a replacement move with it.
    delta = len(new) - len(old)
    folds = [fold + delta * sum(1 for start in replaced_at if fold > start) for fold in getattr(cmd, "fold_pos", [])]
    if isinstance(cmd, FoldedScalarString):
        folded = FoldedScalarString(result)
        folded.fold_pos = folds
        return folded
    return result


def _folder(root: Path, path: str, option: str) -> str:
    """A repo-relative posix folder path, refused when it leaves the repository or is no folder."""
    target = Path(os.path.abspath(root / path))
    if not target.is_relative_to(root):
        raise UsageError(
            f"{option} {path}: outside the repository",
            path=path,
            fix="copy the shards into a folder of the repository (DVC tracks folders inside it)",
        )
    if not target.is_dir():
        raise UsageError(f"{option} {path}: no such folder", path=path, fix="create it and copy the shards in first")
    return target.relative_to(root).as_posix()


def use_shards(root: Path, inputs: dict[str, str | None]) -> ShardsPlan:
    """Remove the sample stage and set each stage's shard folder (``{"merge": "shards/grid"}``; ``None``: keep)."""
    dvc_yaml = root / "dvc.yaml"
    document = _load(dvc_yaml)
    if document is None or not isinstance(document.get("stages"), dict):
        raise UsageError("no stages in dvc.yaml", path="dvc.yaml", fix="run it inside the corpus repository")
    stages = document["stages"]
    removed = stages.pop(SAMPLE_STAGE, None) is not None
    chosen: dict[str, str] = {}
    feeders: list[str] = []
    for name, wanted in inputs.items():
        stage = stages.get(name)
        if stage is None:
            raise UsageError(f"no stage {name!r} in dvc.yaml", path="dvc.yaml", fix="restore it from git")
        current = _data_dep(stage, name)
        # The demo's global merge reads what per-host merges wrote: those stages go with the
        # sample, and the stage reads the shards they read (or the folder given) directly.
        fed_by = _feeders(stages, current, set(inputs))
        fed_from = _source_folder(stages, fed_by)
        option = f"--{'encode' if name == 'merge' else 'mos'}"
        folder = _folder(root, wanted, option) if wanted else (fed_from or current)
        if folder != current:
            stage["deps"] = [folder if str(dep) == current else dep for dep in stage["deps"]]
            stage["cmd"] = _replace_token(stage["cmd"], current, folder, name)
            feeders.extend(fed_by)
        chosen[name] = folder
    for feeder in feeders:
        del stages[feeder]
    changed: list[str] = []
    if removed or feeders or any(inputs.values()):
        _dump(dvc_yaml, document)
        changed.append("dvc.yaml")
    lock = _load(root / "dvc.lock")
    gone = {SAMPLE_STAGE, *feeders}
    if isinstance(lock, dict) and isinstance(lock.get("stages"), dict):
        # What `dvc remove` does: a stage's lock entries (each foreach item's too) go with the stage.
        locked = [entry for entry in lock["stages"] if str(entry).split("@", 1)[0] in gone]
        for entry in locked:
            del lock["stages"][entry]
        if locked:
            _dump(root / "dvc.lock", lock)
            changed.append("dvc.lock")
    return ShardsPlan(removed, chosen, tuple(changed), tuple(feeders))


def _data_deps(stage: Any) -> list[str]:
    """A stage's deps that are not the package code."""
    return [str(dep) for dep in stage.get("deps") or [] if not str(dep).startswith("src")]


def _body(stage: Any) -> Any:
    """What a stage runs: a foreach stage's ``do`` body (still with ``${item}`` in it), else the stage."""
    return stage.get("do") if isinstance(stage, dict) and "foreach" in stage else stage


def _outs(stage: Any) -> list[str]:
    """A stage's out paths (a foreach stage's from its ``do`` body)."""
    body = _body(stage)
    outs = body.get("outs") if isinstance(body, dict) else None
    return [str(next(iter(out))) if isinstance(out, dict) else str(out) for out in outs or []]


def _feeders(stages: dict[str, Any], folder: str, keep: set[str]) -> list[str]:
    """Stages whose outs lie inside ``folder``: they only fed the input a stage no longer reads."""
    return [
        str(name)
        for name, stage in stages.items()
        if name not in keep and any(out.startswith(folder + "/") for out in _outs(stage))
    ]


def _source_folder(stages: dict[str, Any], feeders: list[str]) -> str | None:
    """The one folder the feeder stages read their shards from (``data/raw/encode``), if they agree."""
    folders: set[str] = set()
    for name in feeders:
        folders.update(Path(dep).parent.as_posix() for dep in _data_deps(_body(stages[name]) or {}))
    return folders.pop() if len(folders) == 1 else None
