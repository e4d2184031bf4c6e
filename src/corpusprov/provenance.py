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

__all__ = ["KEY_PACKAGES", "git_state", "package_versions", "run_environment", "utc_now"]

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


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """HEAD commit and whether tracked files differ from it; nulls outside a git work tree."""
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 -- fixed argv, no shell
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30,  # noqa: S607
                check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "--verify", "-q", "HEAD")
    if commit is None:
        inside = run("rev-parse", "--is-inside-work-tree") == "true"
        return {"commit": None, "dirty": None, "repository": inside}
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None,
            "repository": True}


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
