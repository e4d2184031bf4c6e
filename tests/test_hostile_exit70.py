"""No internal error (exit 70) for anything a user or a file can do (issue 13, point 8).

Each case is one of the issue's examples; the hypothesis tests at the end feed random bytes
to every command as shard, params, manifest, dvc.lock, dvc.yaml and .dvc file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, TEST_ENV, VENV_BIN, Cli, encode_row, write_jsonl
from tests.hostile import CORPUS, MANIFEST, assert_clean_failure, mini_repo, write_manifest
from tests.test_merge_bad_input import snapshot

# --------------------------------------------------------------------------- output paths


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (["--output", "."], "."),
        (["--output", ""], "."),
        (["--output", "out/.."], "."),
        (["--output", "a.jsonl/x"], "a.jsonl"),
        (["--output", "a.jsonl/deeper/x.jsonl"], "a.jsonl"),
        (["--output", "out/m.jsonl", "--plots-dir", "a.jsonl"], "a.jsonl"),
        (["--output", "out/m.jsonl", "--manifest-out", "a.jsonl/m.json"], "a.jsonl"),
        (["--output", "out/m.jsonl", "--rejects-out", "a.jsonl/r.jsonl"], "a.jsonl"),
        (["--output", "out/m.jsonl", "--metrics-out", "a.jsonl/sub/m.json"], "a.jsonl"),
    ],
)
@pytest.mark.parametrize("command", ["merge", "aggregate"])
def test_unusable_output_paths_are_usage_errors(
    cli: Cli, tmp_path: Path, command: str, args: list[str], mention: str
) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row()])
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "a.jsonl").write_text("a file, not a folder\n", encoding="utf-8")
    before = snapshot(tmp_path)

    result = cli(command, "in/a.jsonl", *args)

    line = assert_clean_failure(result, 2)
    assert line.startswith(f"corpusprov: error: {mention}"), line
    assert "; " in line, line
    assert snapshot(tmp_path) == before


def test_sample_into_a_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "FILE").write_text("x\n", encoding="utf-8")
    for target in ("FILE", "FILE/sub"):
        result = cli("sample", "--out", target, "--rows", "10")
        line = assert_clean_failure(result, 2)
        assert line.startswith("corpusprov: error: FILE"), line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["FILE"]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged mount namespaces (unshare -rm)")
def test_read_only_filesystem_reports_the_real_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row()])
    (tmp_path / "ro").mkdir()
    script = (
        "mount -t tmpfs none ro && mkdir ro/out && mount -o remount,ro ro && "
        "corpusprov merge in/a.jsonl --output ro/out/m.jsonl"
    )
    env = {**os.environ, **TEST_ENV, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("corpusprov: error: ro/out/m.jsonl: "), done.stderr
    assert "Read-only file system" in lines[0]


# --------------------------------------------------------------------------- trace, replay


@pytest.mark.parametrize(
    "pair",
    [
        "crf=NaN",
        "crf=Infinity",
        "crf=-Infinity",
        "crf=1e400",
        "crf=[1e400]",
        "crf=" + "[" * 5000 + "]" * 5000,
        'crf={"a": NaN}',
    ],
)
def test_trace_refuses_unusable_key_values(cli: Cli, tmp_path: Path, pair: str) -> None:
    mini_repo(cli, tmp_path)
    result = cli("trace", "merge", pair)
    line = assert_clean_failure(result, 2)
    assert "crf" in line and "; " in line, line


def test_replay_keep_onto_a_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    mini_repo(cli, tmp_path)
    (tmp_path / "FILE").write_text("x\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = cli("replay", MANIFEST, "--keep", "FILE")
    line = assert_clean_failure(result, 2)
    assert line.startswith("corpusprov: error: FILE"), line
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- deep manifests


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": [value]}
    return value


@pytest.mark.parametrize("where", ["params", "policy", "extra"])
@pytest.mark.parametrize(
    "command",
    [
        ("verify",),
        ("trace", "merge", "crf=20"),
        ("replay", MANIFEST),
        ("diff", MANIFEST, "other.json"),
        ("diff", "other.json", MANIFEST),
        ("manifest", "validate", MANIFEST),
        ("manifest", "show", MANIFEST),
    ],
)
def test_deeply_nested_manifest_is_refused_by_every_reader(
    cli: Cli, tmp_path: Path, where: str, command: tuple[str, ...]
) -> None:
    document = mini_repo(cli, tmp_path)
    shutil.copy(tmp_path / MANIFEST, tmp_path / "other.json")
    if where == "params":
        document["params"]["values"]["deep"] = _deep(400)
    elif where == "policy":
        document["policy"]["deep"] = _deep(400)
    else:
        document["deep"] = _deep(400)
    write_manifest(tmp_path, document)

    result = cli(*command)

    if command[0] == "verify":
        # verify reports a broken manifest as a finding (exit 1), on stdout.
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and result.stderr == ""
        assert "nested" in result.stdout
        return
    line = assert_clean_failure(result)
    assert MANIFEST in line and "nested" in line, line


# --------------------------------------------------------------------------- signals


def test_sigterm_during_startup_exits_143_without_a_traceback(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row()])
    env = {**os.environ, **TEST_ENV}
    command = [str(VENV_BIN / "corpusprov"), "merge", "in/a.jsonl", "--output", "out/m.jsonl"]
    outcomes = []
    for step in range(24):
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(0.02 * step)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        outcomes.append(process.returncode)
        assert "Traceback" not in stderr, stderr
        assert process.returncode in (0, 143, -signal.SIGTERM), (process.returncode, stderr)
        if process.returncode == 143:
            assert stderr.splitlines() == ["corpusprov: terminated; no output was written"], stderr
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
    assert 143 in outcomes, outcomes


# --------------------------------------------------------------------------- left to aggregate.py


@pytest.mark.parametrize(("field", "reason"), [("mos", "bad_scale"), ("src", "bad_field"), ("src_sha256", "bad_field")])
def test_aggregate_integers_beyond_64_bits_are_not_internal_errors(
    cli: Cli, tmp_path: Path, field: str, reason: str
) -> None:
    row: dict[str, Any] = {"src": "a.y4m", "src_sha256": "b" * 64, "mos": 3.5, "corpus": "lsvq"}
    row[field] = 10**400 if field == "mos" else 2**70
    shutil.copyfile(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = cli("aggregate", "in/a.jsonl", "--output", "out/u.jsonl")
    assert result.exit_code == 0, result.stderr
    rejects = [json.loads(line) for line in (tmp_path / "out/u.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [item["reason"] for item in rejects] == [reason]
    assert rejects[0]["row"][field] == row[field]  # written back exactly


@pytest.mark.parametrize("depth", [254, 300, 1020])
def test_rows_nested_a_few_hundred_deep_are_not_internal_errors(cli: Cli, tmp_path: Path, depth: int) -> None:
    """Nested in lists (no inner object), past what the canonical writer can write: one line, exit 1."""
    line = json.dumps(encode_row())[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text(line + "\n", encoding="utf-8")
    result = cli("merge", "in/a.jsonl", "--output", CORPUS)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("corpusprov: error: in/a.jsonl:1: JSON nested"), result.stderr


@pytest.mark.parametrize("depth", [252, 253])
def test_a_rejected_row_at_the_writers_depth_limit_is_kept_in_the_rejects_file(
    cli: Cli, tmp_path: Path, depth: int
) -> None:
    """The reject record nests the row one level deeper; the row still reaches the rejects file."""
    row = encode_row()
    del row["adm2_mean"]  # rejected (missing key) under on_invalid_row: reject
    line = json.dumps(row)[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text(line + "\n", encoding="utf-8")
    (tmp_path / "params.yaml").write_text("merge:\n  on_invalid_row: reject\n", encoding="utf-8")
    result = cli("merge", "in/a.jsonl", "--output", CORPUS, "--params", "params.yaml")
    assert result.exit_code == 0, result.stderr
    rejects = (tmp_path / CORPUS.replace(".jsonl", ".rejects.jsonl")).read_text(encoding="utf-8").splitlines()
    assert len(rejects) == 1
    assert json.loads(rejects[0])["reason"] == "missing_key"
