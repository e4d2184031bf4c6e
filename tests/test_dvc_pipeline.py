"""The template under real DVC: repro, lock hashes against the manifest, no-op re-runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from corpusprov.io.inputs import dvc_dir_md5
from corpusprov.record.manifest import accounting_problems, load_manifest
from tests.conftest import build_template, run

pytestmark = pytest.mark.dvc

MERGED = "data/merged/encode_grid.jsonl"
MANIFEST = MERGED + ".manifest.json"


def _lock(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe", pure=True).load((repo / "dvc.lock").read_text(encoding="utf-8"))
    return data


def _entry(entries: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return next(entry for entry in entries if entry["path"] == path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository built by `dvc repro`, shared by the read-only checks below."""

    repo = build_template(tmp_path_factory.mktemp("built") / "repo", rows=150, remote=False)
    done = run(["dvc", "repro"], repo)
    (repo.parent / "repro.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    return repo


def test_clean_repro_prints_no_warning(built: Path) -> None:
    # An empty rejects file as an out makes DVC warn "'...' is empty" on every clean build;
    # the template keeps each rejects file in a folder out, which DVC does not warn about.
    log = (built.parent / "repro.log").read_text(encoding="utf-8")
    assert "Running stage 'merge'" in log
    assert "WARNING" not in log, log
    empty = [path for path in (built / "data").rglob("*.rejects.jsonl") if path.stat().st_size == 0]
    assert empty, "the demo has a clean host or stage whose rejects file is empty"


STAGES = {
    # stage: (input folder, output JSONL, rejects, metrics)
    # merge reads the per-host merges' outputs (the demo's two levels).
    "merge": ("data/merged/hosts", MERGED, "data/merged/rejects/encode_grid.rejects.jsonl", "metrics/merge.json"),
    "aggregate": (
        "data/raw/mos",
        "data/unified/mos_unified.jsonl",
        "data/unified/rejects/mos_unified.rejects.jsonl",
        "metrics/aggregate.json",
    ),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_repro_leaves_lock_outputs_manifest_and_metrics(built: Path, stage: str) -> None:
    _, output, rejects, metrics_path = STAGES[stage]
    manifest_path = output + ".manifest.json"
    for path in ("dvc.lock", output, manifest_path, rejects, metrics_path):
        assert (built / path).is_file(), path
    manifest, _ = load_manifest(built / manifest_path, manifest_path)
    assert accounting_problems(manifest) == []
    assert manifest.kind == stage
    assert manifest.provenance["dvc_stage"] == stage
    # The metrics count the whole chain: for merge, the per-host merges below the global one.
    chain = [(manifest, rejects)]
    if stage == "merge":
        for record in manifest.inputs:
            assert record.upstream is not None and record.upstream.kind == "merge"
            host, _ = load_manifest(built / record.upstream.path, record.upstream.path)
            chain.append((host, next(item.path for item in host.outputs if item.role == "rejects")))
            assert host.provenance["dvc_stage"] == f"merge-host@{Path(record.path).stem.removeprefix('grid-')}"
    duplicates = sum(item.counters[name] for item, _ in chain for name in item.accounting["duplicates"])
    rejected = sum(item.counters[name] for item, _ in chain for name in item.accounting["rejected"])
    assert duplicates > 0, "the samples carry duplicates"
    assert rejected > 0, "the samples carry rows that must be rejected"
    metrics = json.loads((built / metrics_path).read_text(encoding="utf-8"))
    figures = metrics[{"merge": "grid", "aggregate": "mos"}[stage]]
    assert figures["out"] == manifest.counters["rows_out"]
    assert figures["rejected"] == rejected and figures["dups"] == duplicates
    assert figures["in"] == figures["out"] + duplicates + rejected
    lines = sum(len((built / path).read_text(encoding="utf-8").splitlines()) for _, path in chain)
    assert lines == rejected


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_manifest_hashes_equal_dvc_lock(built: Path, stage: str) -> None:
    folder_path, output, rejects_path, _ = STAGES[stage]
    manifest_path = output + ".manifest.json"
    lock = _lock(built)["stages"][stage]
    manifest, _ = load_manifest(built / manifest_path, manifest_path)
    dep = _entry(lock["deps"], folder_path)
    assert dep["hash"] == "md5"
    folder = manifest.input_folders[0]
    assert folder["path"] == folder_path
    assert folder["dvc_dir_md5"] == dep["md5"]
    expected = {str(record.relpath): record.md5 for record in manifest.inputs}
    # The manifests beside the inputs (merge's per-host outputs have them) are in DVC's listing too.
    expected |= {
        f"{record.relpath}.manifest.json": record.upstream.md5 for record in manifest.inputs if record.upstream
    }
    assert dvc_dir_md5(sorted(expected.items())) == dep["md5"]
    assert dep["nfiles"] == len(expected)
    # Where the folder is itself an out (the sample's), DVC caches its listing: it agrees file by file.
    listing_path = built / ".dvc" / "cache" / "files" / "md5" / dep["md5"][:2] / dep["md5"][2:]
    if stage == "aggregate":
        listing = json.loads(listing_path.read_text(encoding="utf-8"))
        assert {item["relpath"]: item["md5"] for item in listing} == expected
    corpus = manifest.output("corpus")
    assert corpus is not None
    assert _entry(lock["outs"], output)["md5"] == corpus.md5
    assert _entry(lock["outs"], output)["size"] == corpus.bytes
    rejects = manifest.output("rejects")
    assert rejects is not None
    # The rejects file lives in a folder out of its own: dvc.lock holds that folder's .dir md5.
    folder_out, name = rejects_path.rsplit("/", 1)
    assert rejects.path == rejects_path
    assert _entry(lock["outs"], folder_out)["md5"] == dvc_dir_md5([(name, rejects.md5)])
    manifest_md5 = hashlib.md5((built / manifest_path).read_bytes()).hexdigest()  # noqa: S324
    assert _entry(lock["outs"], manifest_path)["md5"] == manifest_md5
    assert lock["params"]["params.yaml"][stage] == manifest.params["values"]


def test_second_repro_does_no_work_and_status_is_clean(built: Path) -> None:
    before = (built / MANIFEST).read_bytes()
    again = run(["dvc", "repro"], built)
    assert "didn't change, skipping" in again.stdout
    assert "Running stage" not in again.stdout
    assert "Stage 'aggregate' didn't change, skipping" in again.stdout
    assert (built / MANIFEST).read_bytes() == before
    status = run(["dvc", "status"], built)
    assert "Data and pipelines are up to date" in status.stdout


def test_repro_after_param_change_reruns_merge_only(template_repo: Callable[..., Path]) -> None:
    repo = template_repo(rows=60)
    run(["dvc", "repro"], repo)
    first = (repo / MERGED).read_bytes()
    params = (repo / "params.yaml").read_text(encoding="utf-8").replace("keep: first", "keep: last")
    (repo / "params.yaml").write_text(params, encoding="utf-8")
    done = run(["dvc", "repro"], repo)
    assert "Running stage 'merge'" in done.stdout
    assert "Running stage 'sample'" not in done.stdout
    assert "Running stage 'aggregate'" not in done.stdout
    manifest, _ = load_manifest(repo / MANIFEST, MANIFEST)
    assert manifest.policy["dedup"]["keep"] == "last"
    assert (repo / MERGED).read_bytes() != first
