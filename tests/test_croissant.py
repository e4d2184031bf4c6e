"""`corpusprov croissant`: Croissant JSON-LD that mlcroissant validates and reads back, for both stages."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import pytest

from tests.conftest import REPO_ROOT, VENV_BIN, Cli

pytestmark = [
    # rdflib's JSON-LD parser (mlcroissant reads the document with it) builds a ConjunctiveGraph
    # itself, which rdflib 7 deprecates; nothing our document can change.
    pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning"),
]

#: Where each stage's corpus, its manifest and the RecordSet describing its rows are.
STAGES = {
    "merge": ("out/grid.jsonl", "encode_grid_rows"),
    "aggregate": ("out/mos.jsonl", "unified_mos_rows"),
}
#: Any proxy here is dead: a fetch by mlcroissant would fail the test instead of reaching out.
OFFLINE = dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), "http://127.0.0.1:9")


@pytest.fixture
def repo(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root (a .dvc folder) with the sample shards merged and aggregated."""
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".dvc").mkdir()
    shutil.copy2(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    for args in (
        ("sample", "--out", "raw", "--rows", "60"),
        ("merge", "raw/encode", "-o", "out/grid.jsonl", "--params", "params.yaml"),
        ("aggregate", "raw/mos", "-o", "out/mos.jsonl", "--params", "params.yaml"),
    ):
        assert cli(*args).exit_code == 0
    return tmp_path


def manifest_of(repo: Path, stage: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((repo / f"{STAGES[stage][0]}.manifest.json").read_text("utf-8"))
    return manifest


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    # stdlib json, as the stages write NaN/Infinity tokens.
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def run_croissant(cli: Cli, stage: str, *extra: str) -> Any:
    result = cli("croissant", f"{STAGES[stage][0]}.manifest.json", *extra)
    assert result.exit_code == 0, result.stderr
    return result


def same_value(loaded: Any, written: Any, data_type: str) -> bool:
    """mlcroissant's value equals the JSONL's: text as bytes, numbers within pandas' float parsing."""
    if data_type == "sc:DateTime":
        return bool(loaded == datetime.fromisoformat(written.replace("Z", "+00:00")))
    if data_type == "sc:Text" and isinstance(written, int | float | str):
        # A number in a text column (SVT-AV1's preset 8) reads back as its text.
        if loaded == str(written).encode("utf-8"):
            return True
        # mlcroissant 1.1.1 reads JSON Lines with pandas' read_json, whose type inference turns a text
        # column of numeric-looking strings (corpus_version "2010") into floats, then text again ("2010.0").
        return isinstance(written, str) and _numeric(written) and float(loaded) == float(written)
    if isinstance(written, bool) or (isinstance(written, int) and isinstance(loaded, int)):
        return bool(loaded == written)
    if isinstance(written, float) and math.isnan(written):
        return loaded is None or math.isnan(loaded)
    # pandas reads JSON floats with its fast parser (precise_float=False), which keeps about 15 digits
    # after the decimal point: 0.0003319360712545187 comes back as 0.000331936071254.
    return math.isclose(loaded, written, rel_tol=1e-13, abs_tol=1e-15)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_mlcroissant_validates_and_reads_back_every_row(repo: Path, cli: Cli, stage: str) -> None:
    corpus, record_set = STAGES[stage]
    result = run_croissant(cli, stage)
    target = repo / corpus.replace(".jsonl", ".croissant.json")
    assert result.stdout.splitlines() == [
        f"croissant: wrote {target.relative_to(repo)} (Croissant 1.0): RecordSet {record_set}, "
        f"{manifest_of(repo, stage)['counters']['rows_out']} records x "
        f"{len(json.loads(target.read_text('utf-8'))['recordSet'][0]['field'])} fields"
    ]
    dataset = mlc.Dataset(jsonld=str(target))
    assert dataset.metadata.ctx.issues.errors == set()
    assert dataset.metadata.ctx.issues.warnings == set()
    records = list(dataset.records(record_set))
    rows = jsonl_rows(repo / corpus)
    assert len(records) == manifest_of(repo, stage)["counters"]["rows_out"] == len(rows) > 0
    fields = json.loads(target.read_text("utf-8"))["recordSet"][0]["field"]
    assert [field.name for field in dataset.metadata.record_sets[0].fields] == [field["name"] for field in fields]
    for record, row in zip(records, rows, strict=True):
        for field in fields:
            loaded = record[f"{record_set}/{field['name']}"]
            assert same_value(loaded, row[field["name"]], field["dataType"]), (field["name"], loaded)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_the_mlcroissant_validate_command_passes(repo: Path, cli: Cli, stage: str) -> None:
    command = VENV_BIN / "mlcroissant"
    if not command.exists():
        pytest.skip("mlcroissant's console command is not installed")
    run_croissant(cli, stage, "-o", "meta/dataset.croissant.json")
    done = subprocess.run(
        [str(command), "validate", "--jsonld", "meta/dataset.croissant.json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": str(VENV_BIN), "HOME": str(repo), **OFFLINE},
    )
    assert done.returncode == 0, done.stderr
    assert "Done." in done.stderr
    assert "error" not in done.stderr.lower()


def test_validation_fails_on_a_wrong_field_type(repo: Path, cli: Cli) -> None:
    """The check above can fail: mlcroissant refuses a document we broke by hand."""
    run_croissant(cli, "merge")
    target = repo / "out/grid.croissant.json"
    document = json.loads(target.read_text("utf-8"))
    document["recordSet"][0]["field"][0]["dataType"] = "sc:NoSuchType"
    target.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(mlc.ValidationError, match="dataType"):
        mlc.Dataset(jsonld=str(target))


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_file_objects_name_the_bytes_on_disk(repo: Path, cli: Cli, stage: str) -> None:
    corpus = STAGES[stage][0]
    run_croissant(cli, stage, "-o", "elsewhere/deeper/x.croissant.json")
    document = json.loads((repo / "elsewhere/deeper/x.croissant.json").read_text("utf-8"))
    files = {item["@id"]: item for item in document["distribution"]}
    for node_id, path in (("corpus", corpus), ("manifest", f"{corpus}.manifest.json")):
        data = (repo / path).read_bytes()
        assert files[node_id]["contentUrl"] == f"../../{path}"
        assert files[node_id]["sha256"] == hashlib.sha256(data).hexdigest()
        assert files[node_id]["contentSize"] == f"{len(data)} B"
    assert files["corpus"]["encodingFormat"] == "application/jsonlines"
    assert document["prov:wasGeneratedBy"]["subjectOf"] == {"@id": "manifest"}
    # Every input shard, with the hash the manifest recorded and a path that finds it.
    shards = {item["name"]: item for item in document["isBasedOn"] if item["@type"] == "sc:MediaObject"}
    for record in manifest_of(repo, stage)["inputs"]:
        assert shards[record["path"]]["sha256"] == record["sha256"]
        assert shards[record["path"]]["contentUrl"] == f"../../{record['path']}"


def test_aggregate_cites_and_licenses_every_source_corpus(repo: Path, cli: Cli) -> None:
    run_croissant(cli, "aggregate")
    document = json.loads((repo / "out/mos.croissant.json").read_text("utf-8"))
    conversions = manifest_of(repo, "aggregate")["scale_conversions"]
    assert len(conversions) >= 2
    for item in conversions:
        assert f"{item['corpus']}: {item['citation']}" in document["citeAs"].splitlines()
        assert f"{item['corpus']}: {item['licence']}" in document["license"]
    corpora = {item["name"]: item for item in document["isBasedOn"] if item["@type"] == "sc:Dataset"}
    assert {name: entry["citation"] for name, entry in corpora.items()} == {
        item["corpus"]: item["citation"] for item in conversions
    }


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_the_same_manifest_gives_the_same_bytes(repo: Path, cli: Cli, stage: str) -> None:
    target = repo / STAGES[stage][0].replace(".jsonl", ".croissant.json")
    run_croissant(cli, stage)
    first = target.read_bytes()
    target.unlink()
    run_croissant(cli, stage)
    text = target.read_text("utf-8")
    assert target.read_bytes() == first
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert json.loads(text)["datePublished"] == manifest_of(repo, stage)["provenance"]["finished_at_utc"]


def test_a_missing_manifest_is_one_line_and_exit_2(repo: Path, cli: Cli) -> None:
    result = cli("croissant", "out/nope.jsonl.manifest.json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "corpusprov: error: out/nope.jsonl.manifest.json: manifest does not exist; "
        "run the stage (`dvc repro`) or `dvc pull` it\n"
    )
    assert list(repo.rglob("*.croissant.json")) == []


def test_a_corpus_that_changed_since_its_manifest_is_refused(repo: Path, cli: Cli) -> None:
    with (repo / "out/grid.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{}\n")
    result = cli("croissant", "out/grid.jsonl.manifest.json")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("corpusprov: error: out/grid.jsonl: the corpus is not the one its manifest records")
    assert "Traceback" not in result.stderr
    assert list(repo.rglob("*.croissant.json")) == []


def test_the_record_set_follows_the_contract_the_manifest_records(repo: Path, cli: Cli) -> None:
    """A team's own required keys (one this module has no type for) and passthrough MOS rows."""
    params = (repo / "params.yaml").read_text("utf-8")
    required = params[params.index("  required_keys:\n") : params.index("  dedup:\n")]
    params = params.replace(required, "  required_keys: [src_sha256, encoder, preset, crf, host]\n", 1)
    params = params.replace("output_row: unified", "output_row: passthrough")
    (repo / "params.yaml").write_text(params, encoding="utf-8")
    for stage in sorted(STAGES):
        corpus = STAGES[stage][0].replace(".jsonl", "-custom.jsonl")
        assert cli(stage, f"raw/{'encode' if stage == 'merge' else 'mos'}", "-o", corpus).exit_code == 0
        assert cli("croissant", f"{corpus}.manifest.json").exit_code == 0
        dataset = mlc.Dataset(jsonld=str(repo / corpus.replace(".jsonl", ".croissant.json")))
        record_set = dataset.metadata.record_sets[0]
        types = {field.name: field.data_types for field in record_set.fields}
        records = list(dataset.records(record_set.name))
        assert len(records) == json.loads((repo / f"{corpus}.manifest.json").read_text("utf-8"))["counters"]["rows_out"]
        if stage == "merge":
            assert list(types) == ["src_sha256", "encoder", "preset", "crf", "host"]
            assert records[0]["encode_grid_rows/host"] == jsonl_rows(repo / corpus)[0]["host"].encode("utf-8")
        else:
            assert record_set.name == "mos_rows"
            assert list(types) == [
                "src",
                "src_sha256",
                "mos",
                "corpus",
                "mos_native",
                "mos_native_scale",
                "corpus_source",
            ]
