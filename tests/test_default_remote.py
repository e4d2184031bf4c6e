"""The default remote `local` is one folder beside the repository for every git revision DVC reads."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, build_template, local_remote, run

pytestmark = pytest.mark.dvc

#: Paths DVC names in quotes in its verbose transfer log.
QUOTED_PATH = re.compile(r"'(/[^']*)'")


def _paths_named(output: str) -> list[str]:
    return [path for path in QUOTED_PATH.findall(output) if "files/md5" in path or "remote" in path]


def _tagged(repo: Path, tag: str) -> None:
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", f"build {tag}"], repo)
    run(["git", "tag", tag], repo)


@pytest.fixture(scope="module")
def two_tags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository with tags v1 and v2 (different sample seeds) and a bare git origin."""
    base = tmp_path_factory.mktemp("tags")
    repo = build_template(base / "repo", rows=40, commit=False)
    _tagged(repo, "v1")
    params = (repo / "params.yaml").read_text(encoding="utf-8")
    (repo / "params.yaml").write_text(params.replace("  seed: 0\n", "  seed: 1\n"), encoding="utf-8")
    _tagged(repo, "v2")
    run(["git", "init", "-q", "--bare", "-b", "main", str(base / "origin.git")], base)
    run(["git", "remote", "add", "origin", str(base / "origin.git")], repo)
    return repo


def test_setup_writes_an_absolute_url_to_the_git_ignored_local_config(tmp_path: Path) -> None:
    repo = build_template(tmp_path / "repo", rows=20, remote=False)
    folder = local_remote(repo)
    local_remote(repo)  # idempotent: `make setup` runs it every time
    text = (repo / ".dvc" / "config.local").read_text(encoding="utf-8")
    assert text.count('remote "local"') == 1
    assert f"url = {folder}\n" in text
    assert folder.is_absolute()
    assert run(["git", "check-ignore", ".dvc/config.local"], repo).returncode == 0
    assert run(["dvc", "config", "remote.local.url"], repo).stdout.strip() == str(folder)
    assert "url" not in (REPO_ROOT / ".dvc" / "config").read_text(encoding="utf-8").replace("URL", "")


def test_push_all_tags_writes_beside_the_repository(two_tags: Path) -> None:
    done = run(["dvc", "push", "--all-tags", "-v"], two_tags)
    named = _paths_named(done.stdout + done.stderr)
    assert named, done.stdout + done.stderr
    outside = [path for path in named if not path.startswith(str(two_tags.parent) + "/")]
    assert outside == []
    remote = two_tags.parent / "corpusprov-dvc-remote"
    assert (remote / "files" / "md5").is_dir()
    status = run(["dvc", "status", "-c", "--all-tags"], two_tags)
    assert "in sync" in status.stdout, status.stdout


def test_exp_push_writes_beside_the_repository(two_tags: Path) -> None:
    run(["dvc", "exp", "run", "-n", "fewer-rows", "-S", "sample.rows=30"], two_tags)
    done = run(["dvc", "exp", "push", "-v", "origin", "fewer-rows"], two_tags)
    named = _paths_named(done.stdout + done.stderr)
    assert named, done.stdout + done.stderr
    assert [path for path in named if not path.startswith(str(two_tags.parent) + "/")] == []


def test_pull_on_a_tag_reads_the_same_folder(two_tags: Path) -> None:
    run(["dvc", "push", "--all-tags"], two_tags)
    clone = two_tags.parent / "clone"
    run(["git", "clone", "-q", "--branch", "v1", str(two_tags), str(clone)], two_tags.parent)
    local_remote(clone)
    shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
    run(["dvc", "pull", "-r", "local"], clone)
    assert run(["corpusprov", "verify"], clone).returncode == 0
