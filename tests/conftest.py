"""Shared fixtures: shard builders, a CLI runner, and real git + DVC repositories under tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from corpusprov.cli import app
from corpusprov.params.defaults import ENCODE_GRID_REQUIRED_KEYS

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

#: A C compiler is here, so `pip install -e .` must have built the native modules (setup.py).
HAVE_C_COMPILER = shutil.which(str(sysconfig.get_config_var("CC") or "cc").split()[0]) is not None

# DVC must never reach for the network, and git needs an identity CI does not have.
TEST_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "corpusprov tests",
    "GIT_AUTHOR_EMAIL": "tests@corpusprov.invalid",
    "GIT_COMMITTER_NAME": "corpusprov tests",
    "GIT_COMMITTER_EMAIL": "tests@corpusprov.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.delenv("CORPUSPROV_DEBUG", raising=False)


def encode_row(**overrides: Any) -> dict[str, Any]:
    """A valid encode-grid row; override any field."""
    row: dict[str, Any] = {key: f"v-{key}" for key in ENCODE_GRID_REQUIRED_KEYS}
    row.update(
        {
            "schema_version": 3,
            "src": "clip.y4m",
            "src_sha256": "a" * 64,
            "width": 1920,
            "height": 1080,
            "framerate": 30.0,
            "duration_s": 10.0,
            "encoder": "libx264",
            "preset": "medium",
            "crf": 23,
            "encode_size_bytes": 1000,
            "bitrate_kbps": 800.5,
            "encode_time_ms": 1234,
            "vmaf_score": 91.25,
            "score_time_ms": 321,
            "exit_status": 0,
        }
    )
    row.update(overrides)
    return row


def write_jsonl(path: Path, rows: list[Any], *, raw_lines: list[str] | None = None) -> Path:
    """Write rows with stdlib json (NaN allowed), one per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if raw_lines:
        lines.extend(raw_lines)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


class Cli:
    """Invoke the real CLI in-process from a working directory."""

    def __init__(self, runner: CliRunner, cwd: Path) -> None:
        self.runner = runner
        self.cwd = cwd

    def __call__(self, *args: str) -> Any:
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            return self.runner.invoke(app, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)


@pytest.fixture
def cli(runner: CliRunner, tmp_path: Path) -> Cli:
    return Cli(runner, tmp_path)


def run(
    cmd: list[str], cwd: Path, *, check: bool = True, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a real command (git, dvc, corpusprov) with the venv first on PATH."""
    full_env = {**os.environ, **TEST_ENV, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if env:
        full_env.update(env)
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


TEMPLATE_FILES = ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore")


def local_remote(repo: Path) -> Path:
    """Give ``repo`` the default remote `local` the way `make setup` does; return its folder."""
    run(["bash", str(REPO_ROOT / "scripts" / "local-remote.sh"), str(repo)], repo)
    return repo.resolve().parent / "corpusprov-dvc-remote"


def build_template(repo: Path, *, rows: int = 120, remote: bool = True, commit: bool = True) -> Path:
    """Lay this template out in ``repo`` as a fresh git + DVC repository (as a clone of it would be).

    ``remote``: run `make setup`'s remote step (remote `local` beside the repository).
    """
    repo.mkdir(parents=True, exist_ok=True)
    for item in TEMPLATE_FILES:
        shutil.copy2(REPO_ROOT / item, repo / item)
    # The package code is a dependency of the stages; give the repo its own copy so
    # DVC hashes real files inside the repository, as in a clone of the template.
    shutil.copytree(
        REPO_ROOT / "src" / "corpusprov",
        repo / "src" / "corpusprov",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    params = (repo / "params.yaml").read_text(encoding="utf-8")
    (repo / "params.yaml").write_text(params.replace("rows: 600", f"rows: {rows}"), encoding="utf-8")
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    shutil.copytree(REPO_ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    shutil.copy2(REPO_ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    if remote:
        local_remote(repo)
    if commit:
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-q", "-m", "template"], repo)
    return repo


@pytest.fixture
def template_repo(tmp_path: Path) -> Callable[..., Path]:
    """A fresh git + DVC repository holding this template's pipeline, with a local remote."""

    def make(name: str = "repo", *, rows: int = 120) -> Path:
        return build_template(tmp_path / name, rows=rows)

    return make
