"""Run provenance: when, from which commit, under which DVC stage, with which software."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from corpusprov.reporoot import find_root

__all__ = ["CODE_PATHS", "KEY_PACKAGES", "change_kind", "git_state", "package_versions", "run_environment", "utc_now"]

#: Packages whose versions can change output bytes or the manifest.
KEY_PACKAGES: Final = ("corpusprov", "orjson", "ruamel.yaml", "typer", "jsonschema", "dvc")


def utc_now() -> datetime:
    """The current time in UTC (the only wall-clock read in a run)."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """``2026-11-27T04:44:33.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`KEY_PACKAGES` (``None`` when absent)."""
    versions: dict[str, str | None] = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


#: Paths whose changes change what the stages compute: the package and the pipeline definition.
CODE_PATHS: Final = ("src/", "dvc.yaml", "pyproject.toml", "constraints.txt")
#: Paths that pin data in git (DVC's records of it).
DATA_SUFFIXES: Final = (".dvc", "dvc.lock", ".dvcignore")


def change_kind(path: str) -> str:
    """``code``, ``params``, ``data`` or ``other``: what a changed repo-relative path is."""
    if path.startswith(CODE_PATHS[0]) or path in CODE_PATHS[1:]:
        return "code"
    if path == "params.yaml":
        return "params"
    if path.endswith(DATA_SUFFIXES):
        return "data"
    return "other"


def _porcelain_paths(status: str) -> list[tuple[str, str]]:
    """``(XY, path)`` from ``git status --porcelain -z``; a rename's old name is skipped."""
    entries: list[tuple[str, str]] = []
    tokens = iter(status.split("\0"))
    for token in tokens:
        if len(token) < 4:
            continue
        code, path = token[:2], token[3:]
        entries.append((code, path))
        if "R" in code or "C" in code:
            next(tokens, None)
    return entries


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """HEAD commit, whether tracked files differ from it (code, params, data apart), and the experiment's baseline."""

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 -- fixed argv, no shell
                ["git", *args],  # noqa: S607 -- git from PATH, as the user runs it
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = (run("rev-parse", "--verify", "-q", "HEAD") or "").strip() or None
    if commit is None:
        inside = (run("rev-parse", "--is-inside-work-tree") or "").strip() == "true"
        return {"commit": None, "dirty": None, "repository": inside}
    # Porcelain paths are relative to the git root; the DVC repository may sit in a subfolder of it.
    toplevel = Path((run("rev-parse", "--show-toplevel") or ".").strip())
    dvc_root = find_root(cwd or Path.cwd()) or toplevel
    prefix = "" if not dvc_root.is_relative_to(toplevel) else dvc_root.relative_to(toplevel).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    status = run("status", "--porcelain", "-z", "--untracked-files=all")
    state: dict[str, Any] = {"commit": commit, "dirty": None, "repository": True}
    if status is not None:
        entries = [(code, path[len(prefix) :]) for code, path in _porcelain_paths(status) if path.startswith(prefix)]
        tracked = [path for code, path in entries if code != "??"]
        state["dirty"] = bool(tracked)
        # A new file counts as a change only where it changes what runs (a new module in src/).
        changed = dict.fromkeys(("code", "params", "data", "other"), False)
        for code, path in entries:
            kind = change_kind(path)
            if code != "??" or kind == "code":
                changed[kind] = True
        state["changed"] = changed
    # DVC names the baseline commit for queued and --temp experiments; a workspace `dvc exp run`
    # is based on HEAD.
    if os.environ.get("DVC_EXP_NAME") or os.environ.get("DVC_EXP_BASELINE_REV"):
        state["experiment_baseline"] = os.environ.get("DVC_EXP_BASELINE_REV") or commit
    return state


def run_environment() -> dict[str, Any]:
    """Python, platform and DVC context; nothing that names the user or the host."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": f"{platform.system()}-{platform.machine()}",
        "dvc_stage": os.environ.get("DVC_STAGE") or None,
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME") or None,
        "packages": package_versions(),
    }
