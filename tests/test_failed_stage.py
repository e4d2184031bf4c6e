"""A failed `dvc repro` (bad params, bad data) leaves the previous build whole: DVC must not delete it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run

pytestmark = pytest.mark.dvc

#: Every output of the stages: corpus, manifest, rejects, metrics and plot data.
HOSTS = ("host-a", "host-b", "host-c")
BUILD = (
    *(f"data/merged/hosts/grid-{host}.jsonl" for host in HOSTS),
    *(f"data/merged/hosts/grid-{host}.jsonl.manifest.json" for host in HOSTS),
    *(f"data/merged/host-rejects/{host}/grid-{host}.rejects.jsonl" for host in HOSTS),
    "data/merged/encode_grid.jsonl",
    "data/merged/encode_grid.jsonl.manifest.json",
    "data/merged/rejects/encode_grid.rejects.jsonl",
    "metrics/merge.json",
    "plots/merge/rows_by_encoder_preset.json",
    "data/unified/mos_unified.jsonl",
    "data/unified/mos_unified.jsonl.manifest.json",
    "data/unified/rejects/mos_unified.rejects.jsonl",
    "metrics/aggregate.json",
    "plots/aggregate/mos_unified_hist.json",
    "plots/aggregate/mos_native_hist.json",
)


def _snapshot(repo: Path) -> dict[str, bytes]:
    return {path: (repo / path).read_bytes() for path in BUILD if (repo / path).is_file()}


def _verify(repo: Path) -> tuple[int, list[dict[str, str]]]:
    done = run(["corpusprov", "verify", "--json"], repo, check=False)
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)["findings"]


def _pending(repo: Path) -> list[str]:
    report = json.loads(run(["corpusprov", "verify", "--json"], repo, check=False).stdout)
    return [item["what"] for item in report["pending"]]


@pytest.fixture
def built(template_repo: Callable[..., Path]) -> Path:
    repo = template_repo(rows=60)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "build"], repo)
    return repo


def test_bad_param_keeps_the_previous_build(built: Path) -> None:
    before = _snapshot(built)
    assert sorted(before) == sorted(BUILD)
    params = built / "params.yaml"
    good = params.read_text(encoding="utf-8")
    assert "keep: first" in good
    params.write_text(good.replace("keep: first", "keep: newest"), encoding="utf-8")
    failed = run(["dvc", "repro"], built, check=False)
    assert failed.returncode != 0
    assert "merge.dedup.keep" in failed.stderr
    assert _snapshot(built) == before
    # Every file of the build agrees with dvc.lock: verify passes and says the param is pending.
    assert _verify(built) == (0, [])
    # Said once per stage that reads the merge group: three per-host merges and the global one.
    assert _pending(built) == ["param merge.dedup.keep (params.yaml vs manifest)"] * 4
    run(["git", "checkout", "params.yaml"], built)
    assert _verify(built) == (0, [])
    assert _pending(built) == []
    params.write_text(good.replace("keep: first", "keep: last"), encoding="utf-8")
    run(["dvc", "repro"], built)
    assert _verify(built) == (0, [])
    assert (
        _snapshot(built)["data/merged/encode_grid.jsonl.manifest.json"]
        != before["data/merged/encode_grid.jsonl.manifest.json"]
    )


def test_bad_data_keeps_the_previous_build(built: Path) -> None:
    before = _snapshot(built)
    shard = next(iter(sorted((built / "data" / "raw" / "encode").glob("*.jsonl"))))
    good = shard.read_bytes()
    shard.write_bytes(good + b'{"truncated": \n')
    # -s: only the per-host merge that reads it, so DVC does not first regenerate the sample shard it owns.
    failed = run(["dvc", "repro", "-s", "merge-host@host-a"], built, check=False)
    assert failed.returncode != 0
    assert shard.name in failed.stderr
    assert _snapshot(built) == before
    shard.write_bytes(good)
    assert _verify(built) == (0, [])
    run(["dvc", "repro"], built)
    assert _snapshot(built) == before
