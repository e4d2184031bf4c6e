"""verify checks what it can check itself (issue 13, point 5).

Each case edits the manifest (or dvc.lock) so that every recorded hash still agrees (the
dvc.lock is rewritten to match the edited manifest, as a careful forger would), and verify
must still find the lie: line counts, the accounting equation of our own code, and
dvc.lock stages that lack what dvc.yaml declares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.hostile import MANIFEST, dvc_lock_for, mini_repo, write_manifest


def _findings(cli: Cli) -> list[dict[str, Any]]:
    result = cli("verify", "--json")
    assert "Traceback" not in result.output
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1)
    findings: list[dict[str, Any]] = report["findings"]
    return findings


def _rows(document: dict[str, Any]) -> None:
    document["outputs"][0]["rows"] = 5


def _rejects_rows(document: dict[str, Any]) -> None:
    document["outputs"][1]["rows"] = 1


def _own_accounting(document: dict[str, Any]) -> None:
    # A counter only this manifest's accounting knows, so its own equation adds up.
    for counters in (document["counters"], document["inputs"][0]["counters"]):
        counters["bogus"] = 4
        counters["rows_in"] += 4
    document["accounting"]["out"] = ["rows_out", "bogus"]


def _rows_out(document: dict[str, Any]) -> None:
    # Counters that add up among themselves, but not to the corpus on disk.
    for counters in (document["counters"], document["inputs"][0]["counters"]):
        counters["rows_out"] += 1
        counters["rows_in"] += 1


EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "corpus rows": (_rows, "rows"),
    "rejects rows": (_rejects_rows, "rows"),
    "accounting from the manifest": (_own_accounting, "accounting"),
    "rows_out vs corpus": (_rows_out, "rows"),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_verify_finds_a_consistent_forgery(
    cli: Cli, tmp_path: Path, edit: tuple[Callable[[dict[str, Any]], None], str]
) -> None:
    document = mini_repo(cli, tmp_path)
    (tmp_path / "dvc.lock").write_text(dvc_lock_for(tmp_path, document), encoding="utf-8")
    assert _findings(cli) == []
    change, mention = edit
    change(document)
    write_manifest(tmp_path, document)
    (tmp_path / "dvc.lock").write_text(dvc_lock_for(tmp_path, document), encoding="utf-8")

    findings = _findings(cli)

    assert findings, "verify passed a forged manifest"
    assert any(
        mention in item["what"] or mention in item["found"] or mention in item["expected"] for item in findings
    ), findings
    assert all(item["where"] == MANIFEST or item["where"].startswith("out/") for item in findings), findings


@pytest.mark.parametrize("drop", ["out/corpus.rejects.jsonl", "out/corpus.jsonl", "params"])
def test_lock_stage_missing_what_dvc_yaml_declares_is_a_finding(cli: Cli, tmp_path: Path, drop: str) -> None:
    document = mini_repo(cli, tmp_path)
    lock = dvc_lock_for(tmp_path, document)
    if drop == "params":
        lock = lock.replace("    params:\n      params.yaml:\n        merge: {}\n", "")
    else:
        entry = next(block for block in lock.split("    - path: ") if block.startswith(drop + "\n"))
        lock = lock.replace("    - path: " + entry, "")
    (tmp_path / "dvc.lock").write_text(lock, encoding="utf-8")

    findings = _findings(cli)

    assert findings, lock
    wanted = "merge" if drop == "params" else drop
    assert any(wanted in item["found"] + item["expected"] + item["where"] + item["what"] for item in findings), findings
