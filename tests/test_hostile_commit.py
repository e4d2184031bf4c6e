"""A commit that cannot tear (issue 13, point 7).

``strace`` kills the real CLI with SIGKILL at the Nth rename of its run (the intent record's
own rename included), for every N. Afterwards ``verify`` names the interrupted commit, the
recovery rolls it forward so the files on disk are one run's complete set, and the next run
into the folder leaves a consistent set and nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from corpusprov.io.outputs import INTENT_PREFIX, interrupted_commits, recover_commits
from tests.conftest import TEST_ENV, VENV_BIN, Cli, encode_row, write_jsonl
from tests.hostile import CORPUS, MANIFEST, mini_repo

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt-get install strace)")


def _consistent(root: Path) -> bool:
    """Every output the manifest on disk records has the recorded bytes."""
    document = json.loads((root / MANIFEST).read_bytes())
    return all(
        (root / entry["path"]).is_file()
        and hashlib.sha256((root / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
        for entry in document["outputs"]
    )


def _killed_run(root: Path, nth: int) -> int:
    env = {**os.environ, **TEST_ENV, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    calls = "rename,renameat,renameat2"
    done = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-o",
            os.devnull,
            "-e",
            f"trace={calls}",
            "-e",
            f"inject={calls}:signal=SIGKILL:when={nth}",
            str(VENV_BIN / "corpusprov"),
            "merge",
            "in",
            "--output",
            CORPUS,
            "--params",
            "params.yaml",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.returncode


@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_a_run_killed_between_renames_is_named_and_rolled_forward(cli: Cli, tmp_path: Path, nth: int) -> None:
    mini_repo(cli, tmp_path)
    old_corpus = (tmp_path / CORPUS).read_bytes()
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row(crf=40), encode_row(crf=41), encode_row(crf=42)])

    code = _killed_run(tmp_path, nth)

    assert code != 0, "strace did not kill the run (no rename reached?)"
    torn = not _consistent(tmp_path)
    intents = interrupted_commits(tmp_path / "out")
    if torn:
        assert intents, "a torn set without an intent record cannot be recovered"
    if intents:
        report = cli("verify", "--json")
        findings = json.loads(report.stdout)["findings"]
        assert any(
            item["what"] == "commit of the stage's outputs" and "interrupted" in item["found"] for item in findings
        ), findings
        recover_commits(tmp_path / "out")
        assert _consistent(tmp_path)
        assert (tmp_path / CORPUS).read_bytes() != old_corpus  # rolled forward, to the new run's set
    assert interrupted_commits(tmp_path / "out") == []

    result = cli("merge", "in", "--output", CORPUS, "--params", "params.yaml")

    assert result.exit_code == 0, result.output
    assert _consistent(tmp_path)
    assert len((tmp_path / CORPUS).read_bytes().splitlines()) == 3
    leftovers = [path.name for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]
    assert leftovers == [], leftovers


def test_the_next_run_finishes_an_interrupted_commit_before_staging(cli: Cli, tmp_path: Path) -> None:
    mini_repo(cli, tmp_path)
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row(crf=40)])
    assert _killed_run(tmp_path, 3) != 0  # after the intent record and the corpus, before the rest
    assert interrupted_commits(tmp_path / "out"), "the kill at the second target rename left no intent"
    assert not _consistent(tmp_path)
    # Any run that stages into the folder finishes the commit first, even one that then fails.
    (tmp_path / "params.yaml").write_text("merge:\n  dedup:\n    keep: newest\n", encoding="utf-8")
    failed = cli("merge", "in", "--output", CORPUS, "--params", "params.yaml")
    assert failed.exit_code == 2
    assert interrupted_commits(tmp_path / "out") != []  # params fail before anything is staged
    (tmp_path / "params.yaml").write_text("merge: {}\n", encoding="utf-8")
    (tmp_path / "in" / "b.jsonl").write_text("{broken\n", encoding="utf-8")
    failed = cli("merge", "in", "--output", CORPUS, "--params", "params.yaml")
    assert failed.exit_code == 1
    assert interrupted_commits(tmp_path / "out") == []
    assert _consistent(tmp_path)
    assert not any(path.name.startswith(INTENT_PREFIX) for path in (tmp_path / "out").iterdir())
