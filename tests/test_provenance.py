"""The manifest's git provenance (code, params, data changes apart; the experiment baseline); `manifest show`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from corpusprov.record.provenance import change_kind, git_state
from tests.conftest import Cli, run, write_jsonl

TRACKED = ("src/corpusprov/stage.py", "dvc.yaml", "params.yaml", "data/raw/encode.dvc", "README.md")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed git repository laid out like the template: code, pipeline, params, a .dvc file, a README."""
    for path in TRACKED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(f"{path}\n", encoding="utf-8")
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-q", "-m", "c"], tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("src/corpusprov/merge.py", "code"),
        ("dvc.yaml", "code"),
        ("pyproject.toml", "code"),
        ("params.yaml", "params"),
        ("dvc.lock", "data"),
        ("data/raw/encode.dvc", "data"),
        ("README.md", "other"),
        ("srcs/x.py", "other"),
    ],
)
def test_change_kind(path: str, kind: str) -> None:
    assert change_kind(path) == kind


@pytest.mark.parametrize(
    ("edits", "changed"),
    [
        ((), {"code": False, "params": False, "data": False, "other": False}),
        (("params.yaml",), {"code": False, "params": True, "data": False, "other": False}),
        (("src/corpusprov/stage.py",), {"code": True, "params": False, "data": False, "other": False}),
        (("data/raw/encode.dvc", "README.md"), {"code": False, "params": False, "data": True, "other": True}),
        # a new module changes what runs; a stray untracked note does not
        (("src/corpusprov/new.py", "notes.txt"), {"code": True, "params": False, "data": False, "other": False}),
    ],
)
def test_git_state_says_what_differs_from_the_commit(
    repo: Path, monkeypatch: pytest.MonkeyPatch, edits: tuple[str, ...], changed: dict[str, bool]
) -> None:
    for path in edits:
        with open(repo / path, "a", encoding="utf-8") as handle:
            handle.write("edit\n")
    monkeypatch.chdir(repo / "src")  # from a subfolder too: paths are the repository's
    state = git_state()
    assert state["changed"] == changed
    assert state["dirty"] is any(path in TRACKED for path in edits)
    assert "experiment_baseline" not in state


def test_git_state_names_the_experiment_baseline(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    monkeypatch.chdir(repo)
    monkeypatch.setenv("DVC_EXP_NAME", "keep-last")
    assert git_state()["experiment_baseline"] == head
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "f" * 40)
    assert git_state()["experiment_baseline"] == "f" * 40


def test_manifest_show_prints_scale_conversions_and_overrides(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        "aggregate:\n  overrides:\n    forced.jsonl: lsvq\n  scales:\n"
        "    lsvq: {min: 1, max: 5, higher_is_better: true, label: acr-1-5}\n"
        "    live-vqa: {min: 0, max: 100, higher_is_better: false, label: dmos-0-100}\n",
        encoding="utf-8",
    )
    write_jsonl(tmp_path / "forced.jsonl", [{"src": "a", "src_sha256": "s-a", "mos": 3.0, "corpus": "x"}])
    write_jsonl(tmp_path / "d.jsonl", [{"src": "b", "src_sha256": "s-b", "mos": 25.0, "corpus": "live-vqa"}])
    done = cli("aggregate", "forced.jsonl", "d.jsonl", "--output", "u.jsonl")
    assert done.exit_code == 0, done.output
    shown = cli("manifest", "show", "u.jsonl.manifest.json")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "scale conversions:" in text
    assert "  lsvq: mos = 25 * x - 25  [1, 5]" in text
    assert "live-vqa: mos = -1 * x + 100" in text and "(DMOS: lower is better)" in text
    assert "overrides:\n  forced.jsonl: label lsvq" in text
    document = json.loads((tmp_path / "u.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert document["provenance"]["git"]["commit"] is None  # no git here: nulls, not a guess


@pytest.mark.dvc
def test_an_experiment_records_params_changed_code_as_committed(template_repo: Callable[..., Path]) -> None:
    repo = template_repo(rows=40)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "build"], repo)
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    run(["dvc", "exp", "run", "-n", "keep-last", "-S", "merge.dedup.keep=last"], repo)
    # The per-host merge reads the raw shards, which the experiment leaves alone (the global
    # merge reads the per-host outputs, which it changes: its manifest rightly says data changed).
    manifest = "data/merged/hosts/grid-host-a.jsonl.manifest.json"
    git = json.loads((repo / manifest).read_text(encoding="utf-8"))["provenance"]["git"]
    assert git["changed"] == {"code": False, "params": True, "data": False, "other": False}
    assert git["experiment_baseline"] == head
    shown = run(["corpusprov", "manifest", "show", manifest], repo).stdout
    assert f"(params changed; code as committed), experiment baseline {head[:12]}" in shown


def test_the_package_version_is_the_installed_one() -> None:
    """``corpusprov.__version__`` is a literal that pyproject.toml reads at build time: the
    installed distribution must say the same (a stale install or a second copy fails here)."""
    from importlib import metadata

    import corpusprov

    assert corpusprov.__version__ == metadata.version("corpusprov")
