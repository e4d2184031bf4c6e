"""merge: dedup semantics, counters that add up, manifest contents, determinism."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusprov.io.inputs import dvc_dir_md5
from corpusprov.record.manifest import accounting_problems, load_manifest, schema_problems
from corpusprov.stages.run import StageRequest, run_merge
from tests.conftest import Cli, encode_row, write_jsonl

KEY = ("src_sha256", "encoder", "preset", "crf")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _params(folder: Path, body: str) -> Path:
    path = folder / "params.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_merge_dedups_on_value_semantics_and_keeps_first(cli: Cli, tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "shards" / "a.jsonl",
        [
            encode_row(crf=23, run_id="a1"),
            encode_row(crf=24, run_id="a2"),
            encode_row(crf="23", run_id="a3"),  # a string never equals a number
        ],
    )
    write_jsonl(
        tmp_path / "shards" / "b.jsonl",
        [
            encode_row(crf=23.0, run_id="b1"),  # 23 == 23.0: duplicate of a1
            encode_row(crf=24, preset="slow", run_id="b2"),
        ],
    )
    result = cli("merge", "shards", "--output", "out/m.jsonl")
    assert result.exit_code == 0, result.output
    assert [row["run_id"] for row in _lines(tmp_path / "out" / "m.jsonl")] == ["a1", "a2", "a3", "b2"]
    manifest, _ = load_manifest(tmp_path / "out" / "m.jsonl.manifest.json", "m")
    assert manifest.counters["rows_in"] == 5
    assert manifest.counters["rows_out"] == 4
    assert manifest.counters["duplicates"] == 1
    assert [record.counters["duplicates"] for record in manifest.inputs] == [0, 1]
    assert accounting_problems(manifest) == []
    assert "merge: 5 rows in from 2 input(s) -> 4 rows out (1 duplicates, 0 rejected)" in result.output


def test_keep_last_writes_the_last_occurrence_in_input_order(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path, "merge:\n  dedup:\n    keep: last\n")
    write_jsonl(tmp_path / "a.jsonl", [encode_row(crf=23, run_id="a1"), encode_row(crf=30, run_id="a2")])
    write_jsonl(tmp_path / "b.jsonl", [encode_row(crf=23.0, run_id="b1"), encode_row(crf=31, run_id="b2")])
    result = cli("merge", "a.jsonl", "b.jsonl", "-o", "m.jsonl")
    assert result.exit_code == 0, result.output
    assert [row["run_id"] for row in _lines(tmp_path / "m.jsonl")] == ["a2", "b1", "b2"]
    manifest, _ = load_manifest(tmp_path / "m.jsonl.manifest.json", "m")
    assert [r.counters["duplicates"] for r in manifest.inputs] == [1, 0]
    assert [r.counters["rows_out"] for r in manifest.inputs] == [1, 2]
    assert manifest.policy["dedup"]["keep"] == "last"
    assert accounting_problems(manifest) == []


def test_output_bytes_are_canonical_and_rows_pass_through(cli: Cli, tmp_path: Path) -> None:
    raw = '{"crf": 23, "src_sha256": "s", "encoder": "x", "preset": 6, "src": "Café", "f": 5e-05, "g": NaN}\n'
    (tmp_path / "a.jsonl").write_text(raw, encoding="utf-8")
    _params(tmp_path, "merge:\n  required_keys: [src_sha256, encoder, preset, crf, src]\n")
    assert cli("merge", "a.jsonl", "-o", "m.jsonl").exit_code == 0
    assert (tmp_path / "m.jsonl").read_bytes() == (
        '{"crf":23,"encoder":"x","f":0.00005,"g":NaN,"preset":6,"src":"Café","src_sha256":"s"}\n'
    ).encode()


@pytest.mark.parametrize(
    ("policy", "written", "counter"),
    [
        ("keep", "NaN", "non_finite_kept"),
        ("null", "null", "non_finite_nulled"),
    ],
)
def test_non_finite_policy(cli: Cli, tmp_path: Path, policy: str, written: str, counter: str) -> None:
    _params(tmp_path, f"merge:\n  non_finite: {policy}\n")
    write_jsonl(tmp_path / "a.jsonl", [encode_row(cambi=math.nan, crf=20), encode_row(crf=21)])
    assert cli("merge", "a.jsonl", "-o", "m.jsonl").exit_code == 0
    first = (tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert f'"cambi":{written}' in first
    manifest, _ = load_manifest(tmp_path / "m.jsonl.manifest.json", "m")
    assert manifest.counters[counter] == 1


def test_non_finite_reject_and_key_reject_go_to_rejects_with_location(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path, "merge:\n  non_finite: reject\n")
    write_jsonl(
        tmp_path / "a.jsonl", [encode_row(crf=20), encode_row(crf=21, cambi=math.inf), encode_row(crf=math.nan)]
    )
    result = cli("merge", "a.jsonl", "-o", "m.jsonl")
    assert result.exit_code == 0, result.output
    rejects = _lines(tmp_path / "m.rejects.jsonl")
    assert [(r["reason"], r["path"], r["line"]) for r in rejects] == [
        ("non_finite_value", "a.jsonl", 2),
        ("non_finite_key", "a.jsonl", 3),
    ]
    assert rejects[0]["row"]["cambi"] == math.inf
    manifest, _ = load_manifest(tmp_path / "m.jsonl.manifest.json", "m")
    assert manifest.counters["rejected_non_finite_value"] == 1
    assert manifest.counters["rejected_non_finite_key"] == 1
    rejects_entry = manifest.output("rejects")
    assert rejects_entry is not None and rejects_entry.rows == 2
    assert accounting_problems(manifest) == []


def test_manifest_records_hashes_params_and_folder_dir_md5(cli: Cli, tmp_path: Path) -> None:
    params = _params(tmp_path, "merge:\n  dedup:\n    keep: first\n")
    a = write_jsonl(tmp_path / "shards" / "a.jsonl", [encode_row(crf=1)])
    b = write_jsonl(tmp_path / "shards" / "b.jsonl", [encode_row(crf=2)])
    (tmp_path / "shards" / "notes.txt").write_text("not a shard", encoding="utf-8")
    assert cli("merge", "shards", "-o", "out/m.jsonl", "--metrics-out", "metrics.json").exit_code == 0
    document = json.loads((tmp_path / "out" / "m.jsonl.manifest.json").read_bytes())
    assert schema_problems(document) == []
    assert [item["path"] for item in document["inputs"]] == ["shards/a.jsonl", "shards/b.jsonl"]
    for item, path in zip(document["inputs"], (a, b), strict=True):
        data = path.read_bytes()
        assert item["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
        assert item["bytes"] == len(data)
    assert document["input_folders"] == [
        {
            "path": "shards",
            "files": ["a.jsonl", "b.jsonl"],
            "dvc_dir_md5": dvc_dir_md5(
                [("a.jsonl", document["inputs"][0]["md5"]), ("b.jsonl", document["inputs"][1]["md5"])]
            ),
        }
    ]
    assert document["params"]["values"] == {"dedup": {"keep": "first"}}
    assert document["params"]["sha256"] == hashlib.sha256(params.read_bytes()).hexdigest()
    outputs = {item["role"]: item for item in document["outputs"]}
    corpus = (tmp_path / "out" / "m.jsonl").read_bytes()
    assert outputs["corpus"]["md5"] == hashlib.md5(corpus).hexdigest()  # noqa: S324
    assert outputs["corpus"]["rows"] == 2
    metrics = json.loads((tmp_path / "metrics.json").read_bytes())
    assert metrics == {"grid": {"in": 2, "out": 2, "dups": 0, "rejected": 0, "sources": 1, "vmaf": 91.25}}
    assert document["breakdown"]["encoder"]["libx264"] == {"rows": 2, "vmaf_mean": 91.25}

    def scalars_only(value: Any) -> bool:  # DVC flattens objects into columns but drops lists
        return all(scalars_only(v) for v in value.values()) if isinstance(value, dict) else not isinstance(value, list)

    assert scalars_only(metrics)
    assert document["command"]["args"]["inputs"] == ["shards"]
    text = (tmp_path / "out" / "m.jsonl.manifest.json").read_text(encoding="utf-8")
    assert str(tmp_path) not in text


def test_dvc_dir_md5_matches_dvc_itself() -> None:
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    entries = [("b.jsonl", "0" * 32), ("a.jsonl", "f" * 32), ("é.jsonl", "1" * 32)]
    tree = Tree()  # type: ignore[no-untyped-call]  # dvc_data ships no annotations here
    for relpath, md5 in entries:
        tree.add((relpath,), Meta(), HashInfo("md5", md5))
    tree.digest()
    assert tree.hash_info is not None
    assert dvc_dir_md5(entries) == tree.hash_info.value


def test_two_runs_give_byte_identical_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [encode_row(crf=i % 7, src=f"clip{i % 5}", cambi=math.nan if i % 3 == 0 else 1.0) for i in range(60)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    first = run_merge(StageRequest(inputs=("a.jsonl",), output=Path("one.jsonl")))
    second = run_merge(StageRequest(inputs=("a.jsonl",), output=Path("two.jsonl")))
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert first.manifest.output("corpus").sha256 == second.manifest.output("corpus").sha256  # type: ignore[union-attr]


# --- properties --------------------------------------------------------------------------

key_values = st.fixed_dictionaries(
    {
        "src_sha256": st.sampled_from(["a", "b", "c"]),
        "encoder": st.sampled_from(["x264", "svt"]),
        "preset": st.sampled_from(["medium", 6, 6.0, "6"]),
        "crf": st.sampled_from([23, 23.0, "23", 30, 30.5]),
    }
)


def _model(rows: list[dict[str, Any]], keep: str) -> list[dict[str, Any]]:
    """The contract in a few lines: numbers by value, strings exactly, first or last wins."""

    def norm(value: Any) -> Any:
        return ("n", float(value)) if isinstance(value, (int, float)) else ("s", value)

    seen: dict[tuple[Any, ...], int] = {}
    for index, row in enumerate(rows):
        key = tuple(norm(row[name]) for name in KEY)
        if keep == "last" or key not in seen:
            seen[key] = index
    return [rows[index] for index in sorted(seen.values())]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(key_values, min_size=1, max_size=25),
    cuts=st.lists(st.integers(0, 25), max_size=3),
    keep=st.sampled_from(["first", "last"]),
    indent=st.booleans(),
)
def test_merge_matches_the_contract_and_ignores_shard_boundaries_and_formatting(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]], cuts: list[int], keep: str, indent: bool
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    for index, row in enumerate(rows):
        row["seq"] = index
    (folder / "params.yaml").write_text(
        f"merge:\n  required_keys: [src_sha256, encoder, preset, crf]\n  dedup:\n    keep: {keep}\n", encoding="utf-8"
    )
    bounds = sorted({0, len(rows), *(min(cut, len(rows)) for cut in cuts)})
    shard_dir = folder / "shards"
    shard_dir.mkdir()
    for number, (start, end) in enumerate(itertools.pairwise(bounds)):
        # Key order and whitespace of the input must not matter.
        text = "".join(
            json.dumps(dict(reversed(list(row.items()))), separators=(", ", ": ") if indent else (",", ":")) + "\n"
            for row in rows[start:end]
        )
        (shard_dir / f"s{number:02d}.jsonl").write_text(text, encoding="utf-8")
    import os

    old = Path.cwd()
    os.chdir(folder)
    try:
        run_merge(
            StageRequest(
                inputs=("shards",), output=Path("m.jsonl"), params_path=Path("params.yaml"), params_explicit=True
            )
        )
    finally:
        os.chdir(old)
    written = [json.loads(line) for line in (folder / "m.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["seq"] for row in written] == [row["seq"] for row in _model(rows, keep)]
