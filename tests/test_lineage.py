"""Lineage: a stage records the manifest beside each input; `lineage` and `verify --deep` follow the chain."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusprov.io.inputs import dvc_dir_md5
from corpusprov.prove.findings import Checker
from corpusprov.prove.lineage import check_links
from tests.conftest import Cli, run

HOSTS = ("grid-host-a", "grid-host-b", "grid-host-c")


def _two_levels(cli: Cli, root: Path) -> Path:
    """The demo's chain without DVC: per-host merges into one folder, then a global merge of it."""
    assert cli("sample", "--out", "raw", "--rows", "90").exit_code == 0
    for host in HOSTS:
        done = cli(
            "merge",
            f"raw/encode/{host}.jsonl",
            "-o",
            f"hosts/{host}.jsonl",
            "--rejects-out",
            f"host-rejects/{host}.rejects.jsonl",
        )
        assert done.exit_code == 0, done.output
    done = cli("merge", "hosts", "-o", "global/grid.jsonl")
    assert done.exit_code == 0, done.output
    return root / "global/grid.jsonl.manifest.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_stage_records_the_manifest_beside_each_input(cli: Cli, tmp_path: Path) -> None:
    manifest = json.loads(_two_levels(cli, tmp_path).read_text(encoding="utf-8"))
    for record, host in zip(manifest["inputs"], HOSTS, strict=True):
        sidecar = tmp_path / "hosts" / f"{host}.jsonl.manifest.json"
        assert record["upstream_manifest"] == {
            "path": f"hosts/{host}.jsonl.manifest.json",
            "sha256": _sha256(sidecar),
            "md5": hashlib.md5(sidecar.read_bytes()).hexdigest(),  # noqa: S324 -- DVC's md5
            "kind": "merge",
        }
    # The folder's .dir md5 lists the sidecars too, as DVC hashes them into the folder dep.
    entries = []
    for host in HOSTS:
        for name in (f"{host}.jsonl", f"{host}.jsonl.manifest.json"):
            entries.append((name, hashlib.md5((tmp_path / "hosts" / name).read_bytes()).hexdigest()))  # noqa: S324
    assert manifest["input_folders"][0]["dvc_dir_md5"] == dvc_dir_md5(entries)
    # A shard without a sidecar records none.
    first_level = json.loads((tmp_path / "hosts/grid-host-a.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert "upstream_manifest" not in first_level["inputs"][0]


def test_lineage_shows_both_levels_down_to_the_raw_shards(cli: Cli, tmp_path: Path) -> None:
    _two_levels(cli, tmp_path)
    done = cli("lineage", "global/grid.jsonl", "--json")
    assert done.exit_code == 0, done.output
    tree = json.loads(done.output)
    assert tree["path"] == "global/grid.jsonl"
    assert tree["sha256"] == _sha256(tmp_path / "global/grid.jsonl")
    assert tree["manifest"]["kind"] == "merge"
    assert [node["path"] for node in tree["inputs"]] == [f"hosts/{host}.jsonl" for host in HOSTS]
    for node, host in zip(tree["inputs"], HOSTS, strict=True):
        assert node["manifest"]["path"] == f"hosts/{host}.jsonl.manifest.json"
        assert node["problem"] is None
        (leaf,) = node["inputs"]
        assert leaf == {
            "path": f"raw/encode/{host}.jsonl",
            "sha256": _sha256(tmp_path / f"raw/encode/{host}.jsonl"),
            "rows": leaf["rows"],
            "manifest": None,
            "problem": None,
            "inputs": [],
        }
        assert leaf["rows"] == node["manifest"]["rows_in"]
    text = cli("lineage", "global/grid.jsonl.manifest.json")
    assert text.exit_code == 0
    assert "2 levels of manifests" in text.output
    assert "raw/encode/grid-host-c.jsonl" in text.output
    assert "[no manifest: a source shard]" in text.output


def test_lineage_of_a_file_without_a_manifest_is_a_one_line_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "plain.jsonl").write_text("{}\n", encoding="utf-8")
    done = cli("lineage", "plain.jsonl")
    assert done.exit_code == 2
    assert done.output.count("\n") == 1
    assert "no manifest beside this file" in done.output


def test_a_foreign_manifest_continues_the_chain(cli: Cli, tmp_path: Path) -> None:
    """Any document with `kind`, `inputs[].sha256` and `outputs[].sha256` is a link (an ingestion adapter's)."""
    assert cli("sample", "--out", "raw", "--rows", "30").exit_code == 0
    shard = tmp_path / "raw/encode/grid-host-a.jsonl"
    foreign = {"kind": "ingest", "inputs": [{"path": "s3/upload.csv", "sha256": "c" * 64}]}
    foreign["outputs"] = [{"path": "raw/encode/grid-host-a.jsonl", "sha256": _sha256(shard)}]
    (tmp_path / "raw/encode/grid-host-a.jsonl.manifest.json").write_text(json.dumps(foreign), encoding="utf-8")
    assert cli("merge", "raw/encode/grid-host-a.jsonl", "-o", "out/grid.jsonl").exit_code == 0
    tree = json.loads(cli("lineage", "out/grid.jsonl", "--json").output)
    (node,) = tree["inputs"]
    assert node["manifest"]["kind"] == "ingest"
    assert node["inputs"][0]["path"] == "s3/upload.csv"


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (b"not json", "not a JSON object"),
        (b"[]", "not a JSON object"),
        (b'{"kind": "x", "inputs": [], "outputs": [{}]}', "no `outputs` list"),
        (b'{"inputs": [], "outputs": []}', "no `kind`"),
        (b"[" * 5000 + b"]" * 5000, "not a JSON object"),
    ],
)
def test_a_sidecar_that_is_not_a_manifest_stops_the_stage_and_writes_nothing(
    cli: Cli, tmp_path: Path, sidecar: bytes, reason: str
) -> None:
    assert cli("sample", "--out", "raw", "--rows", "30").exit_code == 0
    (tmp_path / "raw/encode/grid-host-b.jsonl.manifest.json").write_bytes(sidecar)
    done = cli("merge", "raw/encode", "-o", "out/grid.jsonl")
    assert done.exit_code == 2
    assert done.output.count("\n") == 1, done.output
    assert "raw/encode/grid-host-b.jsonl.manifest.json" in done.output
    assert reason in done.output
    assert not (tmp_path / "out").exists()


def _document(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=st.sampled_from(HOSTS), where=st.floats(0, 1, exclude_max=True), byte=st.integers(0, 255))
def test_deep_check_names_the_link_whose_output_changed(
    tmp_path_factory: pytest.TempPathFactory, host: str, where: float, byte: int
) -> None:
    """Any one-byte change to any upstream output is named, at that link, by the deep check."""
    root = tmp_path_factory.mktemp("chain")
    from typer.testing import CliRunner

    manifest = _two_levels(Cli(CliRunner(), root), root)
    target = root / "hosts" / f"{host}.jsonl"
    data = bytearray(target.read_bytes())
    offset = int(where * len(data))
    if data[offset] == byte:
        byte = (byte + 1) % 256
    data[offset] = byte
    target.write_bytes(bytes(data))
    check = Checker(root, "merge", rehash=True)
    check_links(check, _document(manifest), "global/grid.jsonl.manifest.json")
    assert [(item.what, item.where) for item in check.findings] == [
        (f"lineage link {host}.jsonl.manifest.json: upstream output sha256 on disk", f"hosts/{host}.jsonl")
    ]


def test_deep_check_names_a_changed_upstream_manifest_and_a_loop(cli: Cli, tmp_path: Path) -> None:
    manifest = _two_levels(cli, tmp_path)
    check = Checker(tmp_path, "merge", rehash=True)
    check_links(check, _document(manifest), "global/grid.jsonl.manifest.json")
    assert check.findings == []
    assert check.checks == 3 * 3  # per link: the manifest hash, the bytes read, the output on disk
    sidecar = tmp_path / "hosts/grid-host-a.jsonl.manifest.json"
    sidecar.write_bytes(sidecar.read_bytes().replace(b'"kind": "merge"', b'"kind": "merged"'))
    check = Checker(tmp_path, "merge", rehash=True)
    check_links(check, _document(manifest), "global/grid.jsonl.manifest.json")
    assert [(item.what, item.where) for item in check.findings] == [
        ("lineage link grid-host-a.jsonl.manifest.json: manifest sha256", "hosts/grid-host-a.jsonl.manifest.json")
    ]
    # A link back up the chain ends the walk instead of looping.
    looped = _document(manifest)
    looped["inputs"][0]["upstream_manifest"]["path"] = "global/grid.jsonl.manifest.json"
    check = Checker(tmp_path, "merge", rehash=True)
    check_links(check, looped, "global/grid.jsonl.manifest.json")
    assert "a loop back to a manifest above" in [item.found for item in check.findings]


@pytest.mark.dvc
def test_demo_pipeline_builds_two_levels_and_verify_deep_names_an_edited_host_output(
    template_repo: Any,
) -> None:
    repo: Path = template_repo(rows=60)
    run(["dvc", "repro", "-q"], repo)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo).stdout
    deep = run(["corpusprov", "verify", "--deep", "--json"], repo)
    report = json.loads(deep.stdout)
    assert report["ok"], report["findings"]
    assert {"merge-host@host-a", "merge-host@host-b", "merge-host@host-c", "merge"} <= set(report["stages"])
    shown = run(["corpusprov", "lineage", "data/merged/encode_grid.jsonl"], repo).stdout
    assert "data/merged/hosts/grid-host-b.jsonl.manifest.json" in shown
    assert "data/raw/encode/grid-host-b.jsonl" in shown
    assert "2 levels of manifests" in shown
    edited = repo / "data/merged/hosts/grid-host-b.jsonl"
    edited.chmod(0o644)
    edited.write_bytes(edited.read_bytes().replace(b"libx264", b"libx265", 1))
    failed = run(["corpusprov", "verify", "--deep", "--json"], repo, check=False)
    assert failed.returncode == 1
    links = [item for item in json.loads(failed.stdout)["findings"] if item["what"].startswith("lineage link")]
    assert [(item["stage"], item["where"]) for item in links] == [("merge", "data/merged/hosts/grid-host-b.jsonl")]
    assert "grid-host-b.jsonl.manifest.json" in links[0]["what"]
