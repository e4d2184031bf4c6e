"""The repository root, found as git and dvc find theirs: walk up from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

from corpusprov.errors import UsageError

__all__ = ["find_root", "repo_root", "root_relative"]


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding a ``.dvc`` folder (DVC's own rule), else ``None``."""
    here = Path(os.path.abspath(start))
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def repo_root(start: Path, command: str) -> Path:
    """:func:`find_root`, or a usage error that says where ``command`` must run."""
    root = find_root(start)
    if root is None:
        raise UsageError(
            "not inside a DVC repository (no .dvc folder here or in any folder above)",
            fix=f"run `corpusprov {command}` inside the repository (`git clone` it, then `make setup`)",
        )
    return root


def root_relative(spec: str, cwd: Path, root: Path) -> str:
    """A path given from ``cwd``, as seen from ``root`` when it names an existing file; else ``spec`` unchanged."""
    candidate = Path(os.path.abspath(cwd / spec))
    if not candidate.exists() or not candidate.is_relative_to(root):
        return spec
    return candidate.relative_to(root).as_posix()
