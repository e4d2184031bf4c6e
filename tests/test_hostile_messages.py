"""Messages that tell the truth (issue 13, point 9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, Cli, encode_row, write_jsonl
from tests.hostile import MANIFEST, assert_clean_failure, mini_repo, write_manifest
from tests.test_aggregate_bad_input import mos_row

# --------------------------------------------------------------------------- diff is symmetric


def _b_lacks_rejects(document: dict[str, Any]) -> None:
    document["outputs"] = [entry for entry in document["outputs"] if entry["role"] != "rejects"]


def _b_other_policy(document: dict[str, Any]) -> None:
    document["policy"]["dedup"]["keep"] = "last"


def _b_other_float_format(document: dict[str, Any]) -> None:
    document["serialization"]["float_format"] = "repr"


@pytest.mark.parametrize(
    "edit", [_b_lacks_rejects, _b_other_policy, _b_other_float_format], ids=["outputs", "policy", "float-format"]
)
def test_diff_sees_a_difference_in_both_directions(cli: Cli, tmp_path: Path, edit: Any) -> None:
    document = mini_repo(cli, tmp_path)
    edit(document)
    write_manifest(tmp_path, document, "b.json")
    forward = cli("diff", MANIFEST, "b.json", "--json", "--exit-code")
    backward = cli("diff", "b.json", MANIFEST, "--json", "--exit-code")
    assert (forward.exit_code, backward.exit_code) == (1, 1), (forward.output, backward.output)
    assert json.loads(forward.stdout)[0]["same"] is False
    assert json.loads(backward.stdout)[0]["same"] is False
    for result in (cli("diff", MANIFEST, "b.json"), cli("diff", "b.json", MANIFEST)):
        assert result.exit_code == 0, result.output
        assert "nothing changed" not in result.stdout, result.stdout


# --------------------------------------------------------------------------- replay names no temp file


def test_replay_params_error_names_the_manifest_not_a_temp_file(cli: Cli, tmp_path: Path) -> None:
    document = mini_repo(cli, tmp_path)
    document["params"]["values"] = {"dedup": {"keep": "newest"}}
    write_manifest(tmp_path, document)
    line = assert_clean_failure(cli("replay", MANIFEST))
    assert line.startswith(f"corpusprov: error: {MANIFEST}: "), line
    assert "corpusprov-replay" not in line and "params.yaml" not in line, line
    assert "merge.dedup.keep" in line, line


# --------------------------------------------------------------------------- manifest validate reports all


def test_manifest_validate_reports_every_file(cli: Cli, tmp_path: Path) -> None:
    mini_repo(cli, tmp_path)
    shutil.copy(tmp_path / MANIFEST, tmp_path / "b.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    result = cli("manifest", "validate", MANIFEST, "missing.json", "bad.json", "b.json")
    assert result.exit_code == 2, result.output
    assert result.stdout.splitlines() == [
        f"{MANIFEST}: valid (merge, manifest v1)",
        "b.json: valid (merge, manifest v1)",
    ]
    errors = result.stderr.splitlines()
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith("corpusprov: error: missing.json: ")
    assert errors[1].startswith("corpusprov: error: bad.json: ")


# --------------------------------------------------------------------------- control characters escaped


@pytest.mark.parametrize("name", ["a\nb.jsonl", "a\rb.jsonl", "a\x1b[31mb.jsonl", "a\tb.jsonl"])
def test_names_with_control_characters_are_printed_escaped(cli: Cli, tmp_path: Path, name: str) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / name).write_bytes(b"{not json\n")
    result = cli("merge", "in", "--output", "out/m.jsonl")
    line = assert_clean_failure(result, 1)
    escaped = name.encode("unicode_escape").decode()
    assert f"in/{escaped}:1:" in line, line
    assert "\x1b" not in result.stderr and "\r" not in result.stderr


def test_stage_names_with_control_characters_are_escaped(cli: Cli, tmp_path: Path) -> None:
    mini_repo(cli, tmp_path)
    result = cli("verify", "no\nsuch")
    line = assert_clean_failure(result, 2)
    assert "no\\nsuch" in line, line


# --------------------------------------------------------------------------- YAML spellings


@pytest.mark.parametrize("spelling", ["!!str first", "!!str 'first'"])
def test_explicit_str_tag_is_accepted_where_a_string_is(cli: Cli, tmp_path: Path, spelling: str) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row(crf=20), encode_row(crf=20)])
    (tmp_path / "params.yaml").write_text(f"merge:\n  dedup:\n    keep: {spelling}\n", encoding="utf-8")
    result = cli("merge", "in/a.jsonl", "--output", "out/m.jsonl")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "m.jsonl.manifest.json").read_bytes())
    assert manifest["params"]["values"]["dedup"]["keep"] == "first"


def test_a_long_params_list_without_aliases_is_not_blamed_on_aliases(cli: Cli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row()])
    keys = ", ".join(f"k{index}" for index in range(100_100))
    (tmp_path / "params.yaml").write_text(f"merge:\n  required_keys: [{keys}]\n", encoding="utf-8")
    line = assert_clean_failure(cli("merge", "in/a.jsonl", "--output", "out/m.jsonl"), 2)
    assert "alias" not in line.lower(), line


# --------------------------------------------------------------------------- trace aggregate


def test_trace_aggregate_refuses_a_field_outside_the_key(cli: Cli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", [mos_row(1), mos_row(2)])
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  aggregate:\n    cmd: x\n    outs:\n      - out/u.jsonl.manifest.json\n", encoding="utf-8"
    )
    assert cli("aggregate", "in", "--output", "out/u.jsonl", "--params", "params.yaml").exit_code == 0

    line = assert_clean_failure(cli("trace", "aggregate", "mos=3"), 2)
    assert "'mos' is not a field of the" in line and "src_sha256" in line, line
    # The key and its fallback fields are traceable.
    assert cli("trace", "aggregate", f"src_sha256={json.dumps(mos_row(1)['src_sha256'])}").exit_code == 0
