"""The corpus as a data registry: another DVC project `dvc import`s it at a pinned revision and proves the bytes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import build_template, run

pytestmark = pytest.mark.dvc

MERGED = "data/merged/encode_grid.jsonl"
MERGED_MANIFEST = MERGED + ".manifest.json"
CORPUS = "corpus/encode_grid.jsonl"
CORPUS_MANIFEST = CORPUS + ".manifest.json"


@dataclass(frozen=True)
class Release:
    """One tagged build of the producer: its commit and what its manifest says about the corpus."""

    tag: str
    commit: str
    corpus_sha256: str
    """The corpus sha256 the manifest records."""
    corpus_bytes: bytes
    manifest_bytes: bytes


@dataclass(frozen=True)
class Registry:
    producer: Path
    v1: Release
    v2: Release


def _release(producer: Path, tag: str) -> Release:
    run(["git", "add", "-A"], producer)
    run(["git", "commit", "-q", "-m", f"corpus {tag}"], producer)
    run(["git", "tag", tag], producer)
    run(["dvc", "push"], producer)
    manifest = json.loads((producer / MERGED_MANIFEST).read_text(encoding="utf-8"))
    corpus = next(item for item in manifest["outputs"] if item["role"] == "corpus")
    assert corpus["path"] == MERGED
    commit = run(["git", "rev-parse", f"{tag}^{{commit}}"], producer).stdout.strip()
    return Release(
        tag, commit, corpus["sha256"], (producer / MERGED).read_bytes(), (producer / MERGED_MANIFEST).read_bytes()
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The producer, tagged v1 and then rebuilt with another sample seed as v2; both pushed to a folder remote."""
    producer = build_template(tmp_path_factory.mktemp("registry") / "producer", rows=150, commit=False)
    run(["dvc", "repro"], producer)
    v1 = _release(producer, "v1")
    params = (producer / "params.yaml").read_text(encoding="utf-8")
    assert "  seed: 0\n" in params
    (producer / "params.yaml").write_text(params.replace("  seed: 0\n", "  seed: 1\n"), encoding="utf-8")
    run(["dvc", "repro"], producer)
    v2 = _release(producer, "v2")
    assert v1.corpus_sha256 != v2.corpus_sha256
    return Registry(producer, v1, v2)


@pytest.fixture(scope="module")
def pristine_consumer(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A separate git + DVC project that imported the corpus and its manifest at v1, committed."""
    consumer = tmp_path_factory.mktemp("consumer") / "consumer"
    consumer.mkdir()
    run(["git", "init", "-q", "-b", "main"], consumer)
    run(["dvc", "init", "-q"], consumer)
    (consumer / "corpus").mkdir()
    for source, target in ((MERGED, CORPUS), (MERGED_MANIFEST, CORPUS_MANIFEST)):
        run(["dvc", "import", str(registry.producer), source, "-o", target, "--rev", "v1"], consumer)
    run(["git", "add", "-A"], consumer)
    run(["git", "commit", "-q", "-m", "import the encode-grid corpus at v1"], consumer)
    return consumer


@pytest.fixture
def consumer(pristine_consumer: Path, tmp_path: Path) -> Path:
    """A private copy of the consumer (git, DVC cache and all) to break things in."""
    copy = tmp_path / "consumer"
    shutil.copytree(pristine_consumer, copy, symlinks=True)
    return copy


def verify_import(repo: Path) -> tuple[int, str, list[dict[str, Any]]]:
    """Run verify-import as text and as --json; both must agree on the verdict and the findings."""
    text = run(["corpusprov", "verify-import"], repo, check=False)
    as_json = run(["corpusprov", "verify-import", "--json"], repo, check=False)
    assert "Traceback" not in text.stderr + as_json.stderr
    assert text.returncode == as_json.returncode, (text.stdout, as_json.stdout)
    report = json.loads(as_json.stdout)
    assert report["ok"] is (text.returncode == 0)
    findings: list[dict[str, Any]] = report["findings"]
    for finding in findings:
        assert finding["where"] in text.stdout, (finding, text.stdout)
        assert finding["what"] in text.stdout, (finding, text.stdout)
    return text.returncode, text.stdout + text.stderr, findings


def _dvc_file(repo: Path, path: str) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe", pure=True).load((repo / f"{path}.dvc").read_text(encoding="utf-8"))
    return data


@pytest.mark.usefixtures("registry")
def test_import_at_v1_verifies(pristine_consumer: Path) -> None:
    code, output, findings = verify_import(pristine_consumer)
    assert code == 0, output
    assert findings == []
    assert output.startswith("verify-import: OK")
    assert CORPUS_MANIFEST in output


@pytest.mark.parametrize("path", [CORPUS, CORPUS_MANIFEST])
def test_dvc_files_pin_the_v1_commit(pristine_consumer: Path, registry: Registry, path: str) -> None:
    repo = _dvc_file(pristine_consumer, path)["deps"][0]["repo"]
    assert repo["rev"] == "v1"
    assert repo["rev_lock"] == registry.v1.commit
    assert repo["rev_lock"] != registry.v2.commit


def test_imported_bytes_are_v1s(pristine_consumer: Path, registry: Registry) -> None:
    imported = (pristine_consumer / CORPUS).read_bytes()
    assert hashlib.sha256(imported).hexdigest() == registry.v1.corpus_sha256
    assert hashlib.sha256(imported).hexdigest() != registry.v2.corpus_sha256
    assert imported == registry.v1.corpus_bytes
    assert (pristine_consumer / CORPUS_MANIFEST).read_bytes() == registry.v1.manifest_bytes
    # The producer's workspace has moved on to v2; the consumer still holds v1.
    assert (registry.producer / MERGED).read_bytes() == registry.v2.corpus_bytes


def test_a_clone_of_the_consumer_pulls_the_pinned_corpus(
    pristine_consumer: Path, tmp_path: Path, registry: Registry
) -> None:
    clone = tmp_path / "consumer-clone"
    run(["git", "clone", "-q", str(pristine_consumer), str(clone)], tmp_path)
    code, output, findings = verify_import(clone)
    assert code == 1, output
    assert not (clone / CORPUS_MANIFEST).exists()
    assert any(item["where"] == CORPUS_MANIFEST and "dvc pull" in item["cause"] for item in findings), findings
    run(["dvc", "pull"], clone)
    code, output, findings = verify_import(clone)
    assert code == 0, output
    assert (clone / CORPUS).read_bytes() == registry.v1.corpus_bytes


def test_tampered_import_is_caught(consumer: Path) -> None:
    data = (consumer / CORPUS).read_bytes()
    (consumer / CORPUS).unlink()  # never write through a link into DVC's cache
    (consumer / CORPUS).write_bytes(data.replace(b'"crf":', b'"crf": ', 1))
    code, output, findings = verify_import(consumer)
    assert code == 1, output
    assert output.startswith("verify-import: FAILED")
    corpus = [item for item in findings if item["where"] == CORPUS]
    assert corpus, findings
    assert any(item["expected"] == hashlib.sha256(data).hexdigest() for item in corpus), corpus
    assert f"{CORPUS}: " in output  # the likely-cause line names the file


def test_same_size_tampering_is_caught(consumer: Path) -> None:
    data = (consumer / CORPUS).read_bytes()
    at = data.index(b'"crf":') + len(b'"crf":')
    changed = data[:at] + (b"9" if data[at : at + 1] != b"9" else b"8") + data[at + 1 :]
    (consumer / CORPUS).unlink()
    (consumer / CORPUS).write_bytes(changed)
    code, output, findings = verify_import(consumer)
    assert code == 1, output
    assert [item for item in findings if item["where"] == CORPUS], findings


def test_manifest_from_another_revision_is_caught(consumer: Path, registry: Registry) -> None:
    run(["dvc", "update", "--rev", "v2", f"{CORPUS_MANIFEST}.dvc"], consumer)
    assert _dvc_file(consumer, CORPUS_MANIFEST)["deps"][0]["repo"]["rev_lock"] == registry.v2.commit
    assert (consumer / CORPUS_MANIFEST).read_bytes() == registry.v2.manifest_bytes
    code, output, findings = verify_import(consumer)
    assert code == 1, output
    revision = [item for item in findings if "different revisions" in item["cause"]]
    assert revision, findings
    assert {revision[0]["expected"], revision[0]["found"]} == {registry.v1.commit, registry.v2.commit}
    assert "different revisions" in output
    # The v1 bytes do not match the v2 manifest either.
    assert any(item["where"] == CORPUS and item["expected"] == registry.v2.corpus_sha256 for item in findings)


def test_manifest_without_its_corpus_is_caught(consumer: Path) -> None:
    run(["dvc", "remove", f"{CORPUS}.dvc"], consumer)
    code, output, findings = verify_import(consumer)
    assert code == 1, output
    assert any(item["what"] == "corpus imported" and item["found"] == "not imported" for item in findings), findings


def test_no_imported_manifest_is_a_usage_error(tmp_path: Path) -> None:
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    done = run(["corpusprov", "verify-import"], tmp_path, check=False)
    assert done.returncode == 2
    assert "no imported manifest" in done.stderr
    assert "Traceback" not in done.stderr


def test_two_pinned_releases_side_by_side_verify(consumer: Path, registry: Registry) -> None:
    """A consumer comparing releases holds v1 and v2 at once; each manifest must be checked against its own corpus."""
    (consumer / "corpus-v2").mkdir()
    for source in (MERGED, MERGED_MANIFEST):
        run(
            ["dvc", "import", str(registry.producer), source, "-o", f"corpus-v2/{Path(source).name}", "--rev", "v2"],
            consumer,
        )
    assert (consumer / "corpus-v2" / "encode_grid.jsonl").read_bytes() == registry.v2.corpus_bytes
    code, output, findings = verify_import(consumer)
    assert code == 0, output
    assert findings == []


def test_same_repository_spelled_two_ways_is_not_a_missing_corpus(consumer: Path, registry: Registry) -> None:
    """Importing the manifest by a relative path and the corpus by an absolute one imports the same repository."""
    run(["dvc", "remove", f"{CORPUS_MANIFEST}.dvc"], consumer)
    (consumer / CORPUS_MANIFEST).unlink(missing_ok=True)
    relative = os.path.relpath(registry.producer, consumer)
    assert relative.startswith("..") and (consumer / relative).resolve() == registry.producer.resolve()
    run(["dvc", "import", relative, MERGED_MANIFEST, "-o", CORPUS_MANIFEST, "--rev", "v1"], consumer)
    _, output, findings = verify_import(consumer)
    # Either it recognises the same repository (and passes), or it says the URLs differ; never "not imported".
    assert not [item for item in findings if item["found"] == "not imported"], output
