"""verify, replay and trace against repositories built by the real `dvc repro`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import build_template, local_remote, run

pytestmark = pytest.mark.dvc

MERGED = "data/merged/encode_grid.jsonl"
MERGED_MANIFEST = MERGED + ".manifest.json"
UNIFIED = "data/unified/mos_unified.jsonl"
UNIFIED_MANIFEST = UNIFIED + ".manifest.json"
SHARD = "data/raw/encode/grid-host-b.jsonl"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository after `dvc repro`, committed and pushed to a local remote beside it."""
    repo = build_template(tmp_path_factory.mktemp("verify") / "repo", rows=150, commit=False)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "build"], repo)
    run(["dvc", "push"], repo)
    return repo


@pytest.fixture
def repo(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the built repository (git, DVC cache and all) to break things in."""
    copy = tmp_path / "repo"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


def verify(repo: Path, *args: str) -> tuple[int, str, list[dict[str, Any]]]:
    text = run(["corpusprov", "verify", *args], repo, check=False)
    as_json = run(["corpusprov", "verify", "--json", *args], repo, check=False)
    assert text.returncode == as_json.returncode
    assert "Traceback" not in text.stderr + as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["ok"] is (text.returncode == 0)
    return text.returncode, text.stdout, report["findings"]


def _only(findings: list[dict[str, Any]], where: str) -> dict[str, Any]:
    matching = [item for item in findings if item["where"] == where]
    assert matching, f"no finding for {where}: {findings}"
    return matching[0]


def test_verify_passes_after_repro(repo: Path) -> None:
    code, out, findings = verify(repo)
    assert code == 0, out
    assert findings == []
    assert "verify: OK" in out and "merge, aggregate" in out
    assert verify(repo, "--no-rehash")[0] == 0
    counts = {
        mode: json.loads(run(["corpusprov", "verify", "--json", *mode], repo).stdout)["checks"]
        for mode in ((), ("--no-rehash",))
    }
    assert counts[()] == counts[("--no-rehash",)] > 0
    assert verify(repo, "merge")[0] == 0


def test_verify_passes_after_clone_and_pull(pristine: Path) -> None:
    clone = pristine.parent / "clone"
    run(["git", "clone", "-q", str(pristine), str(clone)], pristine.parent)
    assert not (clone / MERGED).exists()
    code, _, findings = verify(clone)
    assert code == 1  # nothing pulled yet: outputs and inputs are missing
    assert any("not pulled" in item["cause"] for item in findings)
    local_remote(clone)  # `make setup` in the clone: the same folder beside both
    run(["dvc", "pull"], clone)
    code, out, findings = verify(clone)
    assert code == 0, out
    assert findings == []


def test_shard_edited_after_repro(repo: Path) -> None:
    with open(repo / SHARD, "a", encoding="utf-8") as handle:
        handle.write('{"extra": "row"}\n')
    code, out, findings = verify(repo)
    assert code == 1
    finding = _only(findings, SHARD)
    assert finding["stage"] == "merge-host@host-b"  # the per-host merge reads the shard
    assert "input changed after the last `dvc repro`" in finding["cause"]
    assert SHARD in out and "likely causes" in out


def test_shard_replaced_by_a_same_size_file(repo: Path) -> None:
    data = (repo / SHARD).read_bytes()
    swapped = data.replace(b"libx264", b"libx999", 1)
    assert len(swapped) == len(data) and swapped != data
    (repo / SHARD).write_bytes(swapped)
    code, _, findings = verify(repo)
    assert code == 1
    assert "same size" in _only(findings, SHARD)["cause"]
    # Without re-hashing the sizes agree, so only a full verify can see this.
    assert verify(repo, "--no-rehash")[0] == 0
    counts = {
        mode: json.loads(run(["corpusprov", "verify", "--json", *mode], repo, check=False).stdout)["checks"]
        for mode in ((), ("--no-rehash",))
    }
    assert counts[()] == counts[("--no-rehash",)] > 0


def test_output_jsonl_edited(repo: Path) -> None:
    lines = (repo / MERGED).read_text(encoding="utf-8").splitlines(keepends=True)
    (repo / MERGED).write_text("".join(lines[1:]), encoding="utf-8")
    code, _, findings = verify(repo)
    assert code == 1
    assert "edited after it was written" in _only(findings, MERGED)["cause"]
    # The merge stage's own record, and the two evidence files that vouch for the old bytes.
    assert sorted((item["stage"], item["what"]) for item in findings if item["stage"] != "merge") == [
        ("evidence", "sha256 encode_grid.croissant.json records"),
        ("evidence", "sha256 encode_grid.jsonl.intoto.json records"),
    ]
    assert {item["where"] for item in findings} == {MERGED}


def test_manifest_edited(repo: Path) -> None:
    document = json.loads((repo / UNIFIED_MANIFEST).read_text(encoding="utf-8"))
    document["counters"]["rows_out"] += 1
    (repo / UNIFIED_MANIFEST).write_text(json.dumps(document, indent=2), encoding="utf-8")
    code, _, findings = verify(repo)
    assert code == 1
    finding = _only(findings, UNIFIED_MANIFEST)
    assert finding["stage"] == "aggregate"
    assert "manifest edited by hand" in finding["cause"]


def test_dvc_lock_md5_edited(repo: Path) -> None:
    yaml = YAML()
    lock = yaml.load((repo / "dvc.lock").read_text(encoding="utf-8"))
    out = next(item for item in lock["stages"]["merge"]["outs"] if item["path"] == MERGED)
    out["md5"] = "0" * 32
    with open(repo / "dvc.lock", "w", encoding="utf-8") as handle:
        yaml.dump(lock, handle)
    code, _, findings = verify(repo)
    assert code == 1
    finding = _only(findings, MERGED)
    assert finding["found"] == "0" * 32 or finding["expected"] == "0" * 32
    assert "dvc.lock" in finding["cause"]


def test_params_change_not_yet_reproduced(repo: Path) -> None:
    """The build on disk still agrees with dvc.lock: the edit is said (pending), not failed."""
    params = (repo / "params.yaml").read_text(encoding="utf-8").replace("keep: first", "keep: last")
    (repo / "params.yaml").write_text(params, encoding="utf-8")
    code, text, findings = verify(repo)
    assert (code, findings) == (0, [])
    assert "pending: merge: param merge.dedup.keep (params.yaml vs manifest): first -> last" in text
    report = json.loads(run(["corpusprov", "verify", "--json"], repo).stdout)
    # Every stage that reads the merge group says it: the per-host merges and the global one.
    stages = {item["stage"] for item in report["pending"] if item["where"] == "params.yaml"}
    assert stages == {"merge-host@host-a", "merge-host@host-b", "merge-host@host-c", "merge"}
    finding = next(item for item in report["pending"] if item["stage"] == "merge")
    assert "not yet reproduced" in finding["cause"]
    assert "merge.dedup.keep" in finding["what"]
    assert (finding["expected"], finding["found"]) == ("first", "last")
    # The aggregate group did not change: its stage still agrees.
    assert verify(repo, "aggregate")[0] == 0


def test_shard_added_to_the_input_folder(repo: Path) -> None:
    # The global merge reads the per-host outputs' folder: a shard copied in is one it did not read.
    shutil.copy2(repo / "data/merged/hosts/grid-host-b.jsonl", repo / "data/merged/hosts/grid-host-d.jsonl")
    code, _, findings = verify(repo)
    assert code == 1
    finding = _only(findings, "data/merged/hosts/grid-host-d.jsonl")
    assert finding["stage"] == "merge"
    assert "shard added" in finding["cause"]


def test_manifest_deleted(repo: Path) -> None:
    (repo / MERGED_MANIFEST).unlink()
    code, _, findings = verify(repo)
    assert code == 1
    assert "manifest deleted" in _only(findings, MERGED_MANIFEST)["cause"]


def test_dvc2_style_lock_entries_are_reported_not_compared(repo: Path) -> None:
    yaml = YAML()
    lock = yaml.load((repo / "dvc.lock").read_text(encoding="utf-8"))
    dep = next(item for item in lock["stages"]["aggregate"]["deps"] if item["path"] == "data/raw/mos")
    del dep["hash"]
    with open(repo / "dvc.lock", "w", encoding="utf-8") as handle:
        yaml.dump(lock, handle)
    code, _, findings = verify(repo)
    assert code == 1
    assert "DVC 2" in _only(findings, "data/raw/mos")["cause"]


def test_verify_outside_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    done = run(["corpusprov", "verify"], tmp_path, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("corpusprov: error: dvc.yaml: no dvc.yaml here")


@pytest.mark.parametrize("manifest", [MERGED_MANIFEST, UNIFIED_MANIFEST])
def test_replay_reproduces_both_stages(repo: Path, manifest: str) -> None:
    done = run(["corpusprov", "replay", manifest], repo, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replay: REPRODUCED" in done.stdout
    recorded = json.loads((repo / manifest).read_text(encoding="utf-8"))
    corpus = next(item for item in recorded["outputs"] if item["role"] == "corpus")
    assert corpus["sha256"] in done.stdout
    run(["git", "status", "--porcelain"], repo)
    assert verify(repo)[0] == 0  # replay wrote nothing into the repository


def test_replay_refuses_when_an_input_changed(repo: Path) -> None:
    with open(repo / SHARD, "a", encoding="utf-8") as handle:
        handle.write("\n")
    host = "data/merged/hosts/grid-host-b.jsonl.manifest.json"  # the build that read the shard
    done = run(["corpusprov", "replay", host], repo, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(f"corpusprov: error: {host}: refusing to replay: input {SHARD} changed")


def test_replay_names_the_first_differing_row(repo: Path, tmp_path: Path) -> None:
    # A different tool default cannot be simulated simply; editing the recorded output (and its
    # hash in the manifest) stands in for "the recorded bytes are not what this code writes".
    lines = (repo / MERGED).read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"exit_status":0', '"exit_status":9')
    (repo / MERGED).write_text("".join(lines), encoding="utf-8")
    import hashlib

    document = json.loads((repo / MERGED_MANIFEST).read_text(encoding="utf-8"))
    corpus = next(item for item in document["outputs"] if item["role"] == "corpus")
    corpus["sha256"] = hashlib.sha256((repo / MERGED).read_bytes()).hexdigest()
    (repo / MERGED_MANIFEST).write_text(json.dumps(document), encoding="utf-8")
    done = run(["corpusprov", "replay", MERGED_MANIFEST, "--keep", str(tmp_path / "kept")], repo, check=False)
    assert done.returncode == 1
    assert "NOT REPRODUCED" in done.stdout
    assert "first difference at line 3" in done.stdout
    assert "exit_status: recorded 9, replayed 0" in done.stdout
    assert (tmp_path / "kept" / "encode_grid.jsonl").is_file()


def _dedup_key(repo: Path) -> dict[str, Any]:
    """A natural key the merge stage dropped a duplicate of (from its input rows)."""
    from corpusprov.stages.keys import key_digest

    seen: dict[bytes, dict[str, Any]] = {}
    for shard in sorted((repo / "data/raw/encode").glob("*.jsonl")):
        for line in shard.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            try:
                digest = key_digest(row, ("src_sha256", "encoder", "preset", "crf"))
            except ValueError:
                continue
            if digest in seen:
                return {name: row[name] for name in ("src_sha256", "encoder", "preset", "crf")}
            seen[digest] = row
    raise AssertionError("the sample has no duplicate natural key")


def test_trace_shows_every_occurrence_and_the_winner(repo: Path) -> None:
    key = _dedup_key(repo)
    args = [f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in key.items()]
    done = run(["corpusprov", "trace", "merge", *args], repo)
    lines = done.stdout.splitlines()
    occurrences = [line for line in lines if line.startswith((" * ", "   data/"))]
    assert len(occurrences) >= 2
    assert sum(1 for line in occurrences if line.startswith(" * ")) == 1
    assert "winner" in occurrences[0]
    assert all("duplicate of" in line for line in occurrences[1:])
    assert "dedup.keep: first" in done.stdout


def test_trace_aggregate_explains_the_resolver(repo: Path) -> None:
    counts: dict[str, int] = {}
    for shard in sorted((repo / "data/raw/mos").glob("*.jsonl")):
        for line in shard.read_text(encoding="utf-8").splitlines():
            sha = json.loads(line)["src_sha256"]
            counts[sha] = counts.get(sha, 0) + 1
    sha = next(sha for sha, count in counts.items() if count > 1)
    done = run(["corpusprov", "trace", "aggregate", f"src_sha256={sha}"], repo)
    marked = [line for line in done.stdout.splitlines() if line.startswith(" * ")]
    assert len(marked) == 1
    assert "winner" in marked[0]
    assert "duplicate" in done.stdout
    assert "smaller positive finite mos_std_dev wins" in done.stdout


def test_commands_find_the_root_from_a_subfolder(repo: Path) -> None:
    sub = repo / "data" / "merged"
    code, out, findings = verify(sub)
    assert (code, findings) == (0, []), out
    key = _dedup_key(repo)
    args = [f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in key.items()]
    assert (
        run(["corpusprov", "trace", "merge", *args], sub).stdout
        == run(["corpusprov", "trace", "merge", *args], repo).stdout
    )
    replayed = run(["corpusprov", "replay", "encode_grid.jsonl.manifest.json"], sub, check=False)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replay: REPRODUCED" in replayed.stdout
    same = run(["corpusprov", "diff", "encode_grid.jsonl.manifest.json", "HEAD"], sub, check=False)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "nothing changed" in same.stdout


def test_trace_of_a_key_nowhere_exits_1(repo: Path) -> None:
    done = run(["corpusprov", "trace", "aggregate", "src_sha256=" + "0" * 64], repo, check=False)
    assert done.returncode == 1
    assert "no input row carries this key" in done.stdout


def test_verify_in_an_importing_repository_points_at_verify_import(tmp_path: Path) -> None:
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    done = run(["corpusprov", "verify"], tmp_path, check=False)
    assert done.returncode == 2
    assert "corpusprov verify-import" in done.stderr


def test_verify_import_outside_any_repository_scans_nothing(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "corpus.jsonl.dvc").write_text("outs: [{path: corpus.jsonl}]\n", encoding="utf-8")
    done = run(["corpusprov", "verify-import"], tmp_path, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("corpusprov: error: not inside a DVC repository")
    assert len(done.stderr.splitlines()) == 1


#: A folder dep (aggregate reads the MOS folder; merge reads the per-host outputs' folder).
FOLDER = "data/raw/mos"


def _lock_dep_md5(repo: Path, stage: str, path: str) -> str:
    lock = YAML(typ="safe", pure=True).load((repo / "dvc.lock").read_text(encoding="utf-8"))
    return str(next(dep["md5"] for dep in lock["stages"][stage]["deps"] if dep["path"] == path))


def test_verify_hashes_the_folder_files_dvc_hashes(repo: Path) -> None:
    """Pinned against DVC itself: our file list, hashed as DVC hashes, gives the `.dir` md5 `dvc repro` wrote."""
    from corpusprov.io.hashing import hash_file
    from corpusprov.io.inputs import dvc_dir_md5
    from corpusprov.prove.dvcignore import dvc_folder_files

    with open(repo / ".dvcignore", "a", encoding="utf-8") as handle:
        handle.write(f"{FOLDER}/notes.md\n")
    for name in ("README.txt", "notes.md", ".DS_Store", "nested/deeper.jsonl"):
        (repo / FOLDER / name).parent.mkdir(exist_ok=True)
        (repo / FOLDER / name).write_text(f"{name}\n", encoding="utf-8")
    run(["dvc", "repro", "-s", "aggregate"], repo)  # -s: DVC hashes the folder dep as it now is
    files = dvc_folder_files(repo, FOLDER)
    assert files is not None
    assert "notes.md" not in files and {"README.txt", ".DS_Store", "nested/deeper.jsonl"} <= set(files)
    ours = dvc_dir_md5([(name, hash_file(repo / FOLDER / name).md5) for name in files])
    assert ours == _lock_dep_md5(repo, "aggregate", FOLDER)
    code, out, findings = verify(repo, "aggregate")
    assert code == 1
    assert sorted(item["where"] for item in findings) == [
        f"{FOLDER}/.DS_Store",
        f"{FOLDER}/README.txt",
        f"{FOLDER}/nested/deeper.jsonl",
    ]
    assert all(
        item["found"].startswith("extra file ") and item["found"].endswith(", not in the manifest") for item in findings
    )
    assert not [item for item in findings if "dvc.lock" in item["cause"]], out
    assert ".dvcignore" in _only(findings, f"{FOLDER}/README.txt")["cause"]


@pytest.mark.parametrize("name", ["README.txt", ".DS_Store"])
def test_a_stray_file_is_named_as_such(repo: Path, name: str) -> None:
    (repo / FOLDER / name).write_text("x\n", encoding="utf-8")
    code, _, findings = verify(repo)
    assert code == 1
    assert [(item["where"], item["found"]) for item in findings] == [
        (f"{FOLDER}/{name}", f"extra file {name}, not in the manifest")
    ]


def test_files_dvcignore_excludes_are_not_reported(repo: Path) -> None:
    with open(repo / ".dvcignore", "a", encoding="utf-8") as handle:
        handle.write(".DS_Store\ndata/raw/*/README.txt\n")
    for name in ("README.txt", ".DS_Store"):
        (repo / FOLDER / name).write_text("x\n", encoding="utf-8")
    assert "up to date" in run(["dvc", "status"], repo).stdout
    code, out, findings = verify(repo)
    assert (code, findings) == (0, []), out


REJECTS_FOLDER = "data/merged/rejects"


@pytest.mark.parametrize("recommit", [False, True], ids=["after-repro", "dvc-commit-hashed-it"])
def test_a_stray_file_in_a_rejects_folder_is_named_as_such(repo: Path, recommit: bool) -> None:
    # Each rejects file lives in a folder out (no DVC warning for an empty one): a file the stage
    # did not write is named, and a dvc.lock that hashed it too is not blamed as edited.
    (repo / REJECTS_FOLDER / "notes.txt").write_text("looked at these\n", encoding="utf-8")
    if recommit:
        run(["dvc", "commit", "-f", "merge"], repo)
    code, out, findings = verify(repo)
    assert code == 1
    assert [(item["where"], item["found"]) for item in findings] == [
        (f"{REJECTS_FOLDER}/notes.txt", "extra file notes.txt")
    ], out
    assert "output folder" in findings[0]["cause"]


def test_a_rejects_folder_md5_edited_in_dvc_lock(repo: Path) -> None:
    lock_path = repo / "dvc.lock"
    text = lock_path.read_text(encoding="utf-8")
    lock = YAML(typ="safe", pure=True).load(text)
    old = next(out["md5"] for out in lock["stages"]["merge"]["outs"] if out["path"] == REJECTS_FOLDER)
    lock_path.write_text(text.replace(old, "0" * 32 + ".dir"), encoding="utf-8")
    code, _, findings = verify(repo)
    assert code == 1
    finding = _only(findings, REJECTS_FOLDER)
    assert finding["what"] == "output folder md5 (dvc.lock vs manifest)"
    assert (finding["expected"], finding["found"]) == ("0" * 32 + ".dir", old)  # dvc.lock vs the manifest's
