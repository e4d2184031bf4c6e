"""The pipeline's `evidence` stage: Croissant and in-toto files beside each corpus, checked by `verify`.

Real `dvc repro` in a fresh clone of the template: the stage's outs exist, `verify` counts the
stage and re-checks every sha256 those files record, `verify-attestation` accepts them, and the
demo's aggregate build cites its corpora exactly as the golden Markdown pins (the same section a
model card copies).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run

pytestmark = pytest.mark.dvc

GOLDEN = Path(__file__).parent / "golden" / "cite-aggregate.md"
EVIDENCE = (
    "data/merged/encode_grid.croissant.json",
    "data/merged/encode_grid.jsonl.intoto.json",
    "data/unified/mos_unified.croissant.json",
    "data/unified/mos_unified.jsonl.intoto.json",
)


@pytest.fixture
def built(template_repo: Callable[..., Path]) -> Path:
    repo = template_repo(rows=600)  # the demo's params.yaml: `make demo` builds exactly this
    run(["dvc", "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "Build the corpus"], repo)
    return repo


def findings(repo: Path) -> tuple[int, dict[str, Any]]:
    done = run(["corpusprov", "verify", "--json"], repo, check=False)
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


def test_the_stage_writes_evidence_that_verify_and_verify_attestation_accept(built: Path) -> None:
    assert "Data and pipelines are up to date" in run(["dvc", "status"], built).stdout
    for path in EVIDENCE:
        assert (built / path).stat().st_size > 0, path
    code, report = findings(built)
    assert code == 0, report["findings"]
    assert "evidence" in report["stages"]
    for path in EVIDENCE[1::2]:
        checked = run(["corpusprov", "verify-attestation", path], built)
        assert checked.stdout.endswith("subjects match\n"), checked.stdout
    # The attestation names every file the merge manifest records, and the manifest itself.
    statement = json.loads((built / EVIDENCE[1]).read_text("utf-8"))
    manifest = json.loads((built / "data/merged/encode_grid.jsonl.manifest.json").read_text("utf-8"))
    names = [subject["name"] for subject in statement["subject"]]
    assert names == [*(out["path"] for out in manifest["outputs"]), "data/merged/encode_grid.jsonl.manifest.json"]


def test_verify_names_a_corpus_that_no_longer_matches_its_evidence(built: Path) -> None:
    corpus = built / "data/unified/mos_unified.jsonl"
    corpus.chmod(0o644)
    corpus.write_bytes(corpus.read_bytes().replace(b'"konvid-1k"', b'"konvid-1K"', 1))
    code, report = findings(built)
    assert code == 1
    claims = sorted(
        (item["stage"], item["what"])
        for item in report["findings"]
        if item["where"] == "data/unified/mos_unified.jsonl" and item["stage"] == "evidence"
    )
    assert claims == [
        ("evidence", "sha256 mos_unified.croissant.json records"),
        ("evidence", "sha256 mos_unified.jsonl.intoto.json records"),
    ]


def test_verify_names_an_edited_evidence_file(built: Path) -> None:
    path = built / "data/merged/encode_grid.croissant.json"
    document = json.loads(path.read_text("utf-8"))
    corpus = next(item for item in document["distribution"] if item["contentUrl"] == "encode_grid.jsonl")
    corpus["sha256"] = "0" * 64
    path.chmod(0o644)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    code, report = findings(built)
    assert code == 1
    named = {(item["where"], item["what"]) for item in report["findings"] if item["stage"] == "evidence"}
    assert ("data/merged/encode_grid.croissant.json", "evidence md5 (dvc.lock)") in named
    assert ("data/merged/encode_grid.jsonl", "sha256 encode_grid.croissant.json records") in named


def test_cite_of_the_demo_aggregate_lists_every_corpus_as_the_golden_pins(built: Path) -> None:
    shown = run(["corpusprov", "cite", "data/unified/mos_unified.jsonl.manifest.json"], built).stdout
    assert shown.startswith("## Training data: `data/unified/mos_unified.jsonl`\n")
    # `dvc repro` ran on the template commit; the build's own commit came after it.
    template = run(["git", "rev-parse", "HEAD~1"], built).stdout.strip()
    assert f"- Git commit: `{template}`" in shown
    assert "stage `aggregate` lists this corpus with the same md5 as the manifest" in shown
    section = shown[shown.index("### Source corpora") :]
    assert section == GOLDEN.read_text("utf-8")[GOLDEN.read_text("utf-8").index("### Source corpora") :]
    manifest = json.loads((built / "data/unified/mos_unified.jsonl.manifest.json").read_text("utf-8"))
    for conversion in manifest["scale_conversions"]:
        if conversion["rows_out"]:
            assert f"| {conversion['corpus']} | {conversion['rows_out']} | {conversion['licence']} |" in section
