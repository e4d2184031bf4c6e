"""The README is executable: its walk-throughs run, as written, in a fresh copy of the repository.

A README edit that breaks a walk-through breaks the build. The shell blocks of the sections in
``WALKTHROUGHS`` run in order, each with ``bash -e``, in one temporary copy of this checkout
(tracked files as they are in the working tree, committed as a clone would have them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, VENV_BIN, run

pytestmark = pytest.mark.dvc

#: The README sections whose ``sh`` blocks are run, in this order, and which of their blocks
#: (``None``: all). Of "Share with your team" only the single-user block runs here; its registry
#: block needs a shared remote and runs against the S3 server in test_remotes.py.
WALKTHROUGHS: tuple[tuple[str, tuple[int, ...] | None], ...] = (
    ("Quick start", None),
    ("Evidence for other tools", None),
    ("Compare builds", None),
    ("Bring your own shards", None),
    ("Share with your team", (0,)),
)

#: Lines that are documentation of the suite itself (running it inside itself would recurse).
_SKIPPED = re.compile(r"^\s*make test\b")


def readme_blocks(text: str, section: str) -> list[str]:
    """The ``sh`` code blocks of a ``## section`` (up to the next ``## `` heading)."""
    match = re.search(rf"^## {re.escape(section)}\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {section!r}"
    return re.findall(r"^```sh\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)


def _copy_checkout(target: Path) -> None:
    """The tracked files as they are now, in a fresh git repository (what a clone holds)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
    for name in listed.stdout.decode().split("\0"):
        if name and (REPO_ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, target / name)
    run(["git", "init", "-q", "-b", "main"], target)
    run(["git", "add", "-A"], target)
    run(["git", "commit", "-q", "-m", "clone"], target)
    # Reuse this suite's venv: `make` sees it up to date (its inputs are older), so the
    # walk-through does not reinstall the package it is testing.
    (target / ".venv").symlink_to(VENV_BIN.parent, target_is_directory=True)
    with (target / ".git" / "info" / "exclude").open("a", encoding="utf-8") as handle:
        handle.write(".venv\n")  # a link, so the .gitignore's `.venv/` (folders only) misses it
    for name in ("pyproject.toml", "constraints.txt"):
        os.utime(target / name, (0, 0))


def test_section_parser_finds_blocks() -> None:
    text = "## A\n\ntext\n\n```sh\necho one\n```\n\n```\nnot sh\n```\n## B\n```sh\necho two\n```\n"
    assert readme_blocks(text, "A") == ["echo one\n"]
    assert readme_blocks(text, "B") == ["echo two\n"]


def test_readme_walkthroughs_run_as_written(tmp_path: Path) -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    repo = tmp_path / "corpusprov"
    repo.mkdir()
    _copy_checkout(repo)
    env = {"PATH": f"{repo / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    ran = 0
    for section, chosen in WALKTHROUGHS:
        blocks = readme_blocks(text, section)
        for block in blocks if chosen is None else [blocks[index] for index in chosen]:
            script = "\n".join(line for line in block.splitlines() if not _SKIPPED.match(line))
            done = run(["bash", "-e", "-c", script], repo, check=False, env=env, timeout=900)
            assert done.returncode == 0, (
                f"README {section!r} block failed (exit {done.returncode}):\n"
                f"{block}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
            )
            ran += 1
        if section == "Compare builds":
            # The README's table: the changed params and headline figures fit 120 columns.
            shown = run(
                ["dvc", "exp", "show", "--no-pager", "--only-changed", "--drop", "Created", "--drop", "data/"],
                repo,
                env={**env, "COLUMNS": "120"},
            ).stdout
            assert "…" not in shown, shown
            for column in (
                "mos.out",
                "mos.rejected",
                "mos.mean",
                "aggregate.range_slack",
                "aggregate.dedup.std_dev_units",
            ):
                assert column in shown, shown
            # What the README says of the plain command: at 120 columns DVC folds the figures.
            plain = run(["dvc", "exp", "show", "--no-pager"], repo, env={**env, "COLUMNS": "120"}).stdout
            assert "mos.mean" not in plain and "…" in plain, plain
    assert ran >= len(WALKTHROUGHS)
    # The single-user remote is the folder beside the repository, for the workspace and tags alike.
    assert any((tmp_path / "corpusprov-dvc-remote").rglob("*")), "dvc push wrote nothing beside the repo"
