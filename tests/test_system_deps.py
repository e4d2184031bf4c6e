"""`make test` installs the system packages the suite needs; `make demo` installs only the pipeline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "system-deps.sh"


def _fake_bin(tmp_path: Path, *, uid: int, tools: tuple[str, ...] = ()) -> Path:
    """A PATH holding only a fake `id`, an `apt-get` that records its arguments, and ``tools``."""
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "apt-calls"
    scripts = {"id": f"#!/bin/sh\necho {uid}\n", "apt-get": f'#!/bin/sh\necho "$*" >> {calls}\n'}
    scripts.update(dict.fromkeys(tools, "#!/bin/sh\nexit 0\n"))
    for name, text in scripts.items():
        (fake / name).write_text(text, encoding="utf-8")
        (fake / name).chmod(0o755)
    return fake


def _run(fake: Path, mode: str, sshd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(fake), "CORPUSPROV_SSHD": str(sshd), "PYTHON": "python3"}
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), mode], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def test_not_root_names_the_packages_and_the_command_and_fails(tmp_path: Path) -> None:
    done = _run(_fake_bin(tmp_path, uid=1000), "test", tmp_path / "no-sshd")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "sudo apt-get install -y chromium openssh-server" in lines[0]
    assert not (tmp_path / "apt-calls").exists()


def test_root_installs_the_missing_packages_with_apt_get(tmp_path: Path) -> None:
    done = _run(_fake_bin(tmp_path, uid=0), "test", tmp_path / "no-sshd")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "apt-calls").read_text(encoding="utf-8").splitlines()
    assert calls == ["update -qq", "install -y -qq chromium openssh-server"]


def test_nothing_missing_installs_nothing(tmp_path: Path) -> None:
    sshd = tmp_path / "sshd"
    sshd.write_text("#!/bin/sh\n", encoding="utf-8")
    sshd.chmod(0o755)
    done = _run(_fake_bin(tmp_path, uid=1000, tools=("chromium",)), "test", sshd)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert not (tmp_path / "apt-calls").exists()


def _dry_run(target: str) -> str:
    """What ``make`` would run for ``target`` from scratch (``-B``: as on a fresh clone)."""
    return subprocess.run(
        ["make", "-n", "-B", target], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def test_make_test_installs_the_system_packages_before_pytest() -> None:
    commands = _dry_run("test").splitlines()
    deps = commands.index("./scripts/system-deps.sh test")
    pytest_line = next(index for index, line in enumerate(commands) if "pytest" in line)
    assert deps < pytest_line
    assert any("'.[dev]'" in line for line in commands)


def test_make_demo_installs_only_the_pipeline() -> None:
    commands = _dry_run("demo")
    assert "-c constraints.txt -e .\n" in commands
    assert ".[dev]" not in commands
    assert "system-deps.sh test" not in commands


@pytest.mark.parametrize("word", ["apt-get install -y -qq make", "make test"])
def test_ci_runs_the_readme_test_command_and_nothing_more(word: str) -> None:
    commands = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "make test"
    assert word in " ".join(commands)
    assert not [line for line in commands if "pytest" in line or "chromium" in line or "sshd" in line]
