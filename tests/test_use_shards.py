"""`corpusprov use-shards`: the sample stage goes, merge and aggregate read your own `dvc add`ed folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO_ROOT, run

pytestmark = pytest.mark.dvc


def _stages(repo: Path, name: str = "dvc.yaml") -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, dict[str, object]]] = YAML(typ="safe", pure=True).load(
        (repo / name).read_text(encoding="utf-8")
    )
    return data["stages"]


@pytest.fixture
def built(template_repo: Callable[..., Path]) -> Path:
    repo = template_repo(rows=40)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "build"], repo)
    # Stand-ins for a team's own shards, outside the repository.
    run(["corpusprov", "sample", "--out", "../my-shards", "--seed", "7", "--rows", "60"], repo)
    return repo


def test_own_shards_in_the_sample_folders(built: Path) -> None:
    done = run(["corpusprov", "use-shards"], built)
    assert "removed the sample stage" in done.stdout
    assert "sample" not in _stages(built) and "sample" not in _stages(built, "dvc.lock")
    for kind in ("encode", "mos"):
        run(["rm", "-rf", f"data/raw/{kind}"], built)
        run(["cp", "-R", f"../my-shards/{kind}", "data/raw/"], built)
    run(["dvc", "add", "data/raw/encode", "data/raw/mos"], built)
    repro = run(["dvc", "repro"], built)
    assert "Running stage 'merge'" in repro.stdout and "Running stage 'aggregate'" in repro.stdout
    assert run(["corpusprov", "verify"], built).returncode == 0
    assert "up to date" in run(["dvc", "status"], built).stdout


def test_own_shards_in_another_folder_of_the_repository(built: Path) -> None:
    (built / "shards").mkdir()
    run(["cp", "-R", "../my-shards/encode", "shards/grid"], built)
    run(["cp", "-R", "../my-shards/mos", "shards/scores"], built)
    run(["corpusprov", "use-shards", "--encode", "shards/grid", "--mos", "shards/scores"], built)
    stages = _stages(built)
    assert stages["merge"]["deps"] == ["shards/grid", "src/corpusprov"]
    assert stages["aggregate"]["deps"] == ["shards/scores", "src/corpusprov"]
    text = (built / "dvc.yaml").read_text(encoding="utf-8")
    assert "      corpusprov merge shards/grid\n      --output data/merged/encode_grid.jsonl\n" in text
    run(["dvc", "add", "shards/grid", "shards/scores"], built)
    run(["dvc", "repro"], built)
    assert run(["corpusprov", "verify"], built).returncode == 0
    again = run(["corpusprov", "use-shards"], built)
    assert "nothing to change" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--encode", "../my-shards/encode"], "outside the repository"),
        (["--mos", "no/such/folder"], "no such folder"),
    ],
)
def test_bad_folders_are_refused_and_nothing_changes(built: Path, args: list[str], message: str) -> None:
    before = (built / "dvc.yaml").read_bytes()
    done = run(["corpusprov", "use-shards", *args], built, check=False)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.splitlines()) == 1
    assert (built / "dvc.yaml").read_bytes() == before


def test_the_template_dvc_yaml_round_trips_untouched(tmp_path: Path) -> None:
    """Our YAML settings write the template's own layout, so use-shards changes only what it must."""
    from corpusprov.shards import use_shards

    (tmp_path / ".dvc").mkdir()
    text = (REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8")
    # Without the sample (and the per-host merges that read its shards), merge reads the shards.
    rest = text[text.index("  merge:\n") :]
    assert rest.count("data/merged/hosts") == 2  # the global merge's cmd and its dep
    own_shards = text[: text.index("  sample:\n")] + rest.replace("data/merged/hosts", "data/raw/encode")
    (tmp_path / "dvc.yaml").write_text(own_shards, encoding="utf-8")
    plan = use_shards(tmp_path, {"merge": None, "aggregate": None})
    assert plan.changed == ()
    (tmp_path / "dvc.yaml").write_text(text, encoding="utf-8")
    plan = use_shards(tmp_path, {"merge": None, "aggregate": None})
    assert plan.removed_sample
    assert plan.removed_feeders == ("merge-host",)
    assert plan.inputs["merge"] == "data/raw/encode"
    assert (tmp_path / "dvc.yaml").read_text(encoding="utf-8") == own_shards
