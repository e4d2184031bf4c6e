"""Manifests, dvc.lock, dvc.yaml and .dvc files are untrusted input (issue 13, point 4).

A path that leaves the repository (``../``, absolute, ``~``) is refused by the schema and by
every reader, so no command opens a file outside the repository and prints its hashes or
rows; a YAML alias bomb meets the params node budget; wrong shapes are one-line errors.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from corpusprov.record.manifest import schema_problems
from tests.conftest import Cli, encode_row, write_jsonl
from tests.hostile import MANIFEST, assert_clean_failure, dvc_lock_for, mini_repo, write_manifest

SECRET_ROWS = [encode_row(crf=77)]


@pytest.fixture
def repo(cli: Cli, tmp_path: Path) -> tuple[Path, dict[str, Any], bytes]:
    """A mini repo in tmp_path, and a secret shard in a folder beside it (outside the repo)."""
    document = mini_repo(cli, tmp_path)
    secret = write_jsonl(tmp_path.parent / f"{tmp_path.name}-secret" / "secret.jsonl", SECRET_ROWS)
    return tmp_path, document, secret.read_bytes()


def _leaks(output: str, secret: bytes) -> list[str]:
    digests = [hashlib.sha256(secret).hexdigest(), hashlib.md5(secret).hexdigest()]  # noqa: S324
    return [value for value in [*digests, 'crf": 77', '"crf":77'] if value[:12] in output]


def _set(document: dict[str, Any], where: str, value: str) -> None:
    if where == "inputs.path":
        document["inputs"][0]["path"] = value
    elif where == "inputs.arg":
        document["inputs"][0]["arg"] = value
    elif where == "outputs.path":
        document["outputs"][0]["path"] = value
    elif where == "input_folders.path":
        document["input_folders"][0]["path"] = value
    elif where == "args.inputs":
        document["command"]["args"]["inputs"] = [value]
    elif where == "params.path":
        document["params"]["path"] = value


WHERE = ["inputs.path", "inputs.arg", "outputs.path", "input_folders.path", "args.inputs", "params.path"]
SPELLINGS = ["../{secret}/secret.jsonl", "{abs}/secret.jsonl", "in/../../{secret}/secret.jsonl", "..", "~/secret.jsonl"]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("where", WHERE)
def test_schema_refuses_paths_that_leave_the_repository(
    repo: tuple[Path, dict[str, Any], bytes], where: str, spelling: str
) -> None:
    root, document, _ = repo
    _set(document, where, spelling.format(secret=f"{root.name}-secret", abs=str(root.parent)))
    assert schema_problems(document), (where, spelling)


@pytest.mark.parametrize(
    "command",
    [
        ("verify",),
        ("trace", "merge", "crf=77"),
        ("replay", MANIFEST),
        ("manifest", "validate", MANIFEST),
        ("manifest", "show", MANIFEST),
        ("diff", MANIFEST, "copy.json"),
    ],
)
@pytest.mark.parametrize("where", WHERE)
def test_no_reader_opens_a_path_outside_the_repository(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes], where: str, command: tuple[str, ...]
) -> None:
    root, document, secret = repo
    (root / "copy.json").write_bytes((root / MANIFEST).read_bytes())
    _set(document, where, f"../{root.name}-secret/secret.jsonl")
    write_manifest(root, document)

    result = cli(*command)

    assert result.exit_code in (1, 2), result.output
    assert _leaks(result.output, secret) == [], result.output
    if command[0] != "verify":
        line = assert_clean_failure(result)
        assert MANIFEST in line, line


def test_verify_does_not_follow_a_link_out_of_the_repository(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes]
) -> None:
    root, _, secret = repo
    corpus = root / "out" / "corpus.jsonl"
    corpus.unlink()
    corpus.symlink_to(root.parent / f"{root.name}-secret" / "secret.jsonl")
    result = cli("verify")
    assert result.exit_code == 1
    assert _leaks(result.output, secret) == [], result.output
    assert "outside the repository" in result.output


def test_trace_does_not_follow_an_input_link_out_of_the_repository(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes]
) -> None:
    root, _, secret = repo
    shard = root / "in" / "a.jsonl"
    shard.unlink()
    shard.symlink_to(root.parent / f"{root.name}-secret" / "secret.jsonl")
    result = cli("trace", "merge", "crf=77")
    line = assert_clean_failure(result, 2)
    assert line.startswith("corpusprov: error: in/a.jsonl: "), line
    assert _leaks(result.output, secret) == [], result.output


ALIAS_BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.mark.parametrize("name", ["dvc.lock", "dvc.yaml"])
def test_yaml_alias_bomb_meets_the_node_budget(cli: Cli, repo: tuple[Path, dict[str, Any], bytes], name: str) -> None:
    root, _, _ = repo
    (root / name).write_text(ALIAS_BOMB + "stages:\n  merge: {x: *i}\n", encoding="utf-8")
    started = time.monotonic()
    result = cli("verify")
    assert time.monotonic() - started < 20
    line = assert_clean_failure(result, 2)
    assert line.startswith(f"corpusprov: error: {name}: "), line
    assert "100000" in line


def test_a_long_list_without_aliases_is_not_blamed_on_aliases(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes]
) -> None:
    root, _, _ = repo
    items = ", ".join(["x"] * 100_100)
    (root / "dvc.lock").write_text(f"schema: '2.0'\nbig: [{items}]\nstages: {{}}\n", encoding="utf-8")
    line = assert_clean_failure(cli("verify"), 2)
    assert "alias" not in line, line
    assert "100000" in line


LOCK_SHAPES = {
    "stages a list": "stages: [merge]\n",
    "stage a string": "stages:\n  merge: text\n",
    "deps a mapping": "stages:\n  merge:\n    deps: {path: in}\n",
    "dep a string": "stages:\n  merge:\n    deps: [in]\n",
    "out without path": "stages:\n  merge:\n    outs:\n    - md5: 0123\n",
    "out path a list": "stages:\n  merge:\n    outs:\n    - path: [a]\n",
    "params a list": "stages:\n  merge:\n    params: [merge]\n",
    "params file a string": "stages:\n  merge:\n    params:\n      params.yaml: merge\n",
    "dep outside": "stages:\n  merge:\n    deps:\n    - path: ../secret\n",
    "dep absolute": "stages:\n  merge:\n    deps:\n    - path: /etc/passwd\n",
    "top level a list": "- stages\n",
    "python tag": "stages: !!python/object:os.system {}\n",
}


@pytest.mark.parametrize("text", LOCK_SHAPES.values(), ids=LOCK_SHAPES.keys())
def test_malformed_dvc_lock_is_one_line_naming_it(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes], text: str
) -> None:
    root, _, _ = repo
    (root / "dvc.lock").write_text(text, encoding="utf-8")
    line = assert_clean_failure(cli("verify"), 2)
    assert line.startswith("corpusprov: error: dvc.lock: "), line
    assert "; " in line


YAML_SHAPES = {
    "stages a list": "stages: [merge]\n",
    "outs a string": "stages:\n  merge:\n    outs: out/corpus.jsonl.manifest.json\n",
    "out a list": "stages:\n  merge:\n    outs:\n    - [a]\n",
    "out outside": "stages:\n  merge:\n    outs:\n    - ../x.manifest.json\n",
    "out absolute": "stages:\n  merge:\n    outs:\n    - /tmp/x.manifest.json\n",
}


@pytest.mark.parametrize("command", [("verify",), ("trace", "merge", "crf=20")])
@pytest.mark.parametrize("text", YAML_SHAPES.values(), ids=YAML_SHAPES.keys())
def test_malformed_dvc_yaml_is_one_line_naming_it(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes], text: str, command: tuple[str, ...]
) -> None:
    root, _, _ = repo
    (root / "dvc.yaml").write_text(text, encoding="utf-8")
    line = assert_clean_failure(cli(*command), 2)
    assert line.startswith("corpusprov: error: dvc.yaml: "), line


DVC_FILE_SHAPES = {
    "top level a list": "- outs\n",
    "deps a string": "deps: x\nouts:\n- path: m.manifest.json\n",
    "dep a string": "deps: [x]\nouts:\n- path: m.manifest.json\n",
    "out without path": "deps:\n- path: out/m.manifest.json\n  repo: {url: ../src}\nouts:\n- md5: x\n",
    "repo a string": "deps:\n- path: out/m.manifest.json\n  repo: ../src\nouts:\n- path: m.manifest.json\n",
    "out outside": "deps:\n- path: out/m.manifest.json\n  repo: {url: ../src}\nouts:\n- path: ../../m.manifest.json\n",
}


@pytest.mark.parametrize("text", DVC_FILE_SHAPES.values(), ids=DVC_FILE_SHAPES.keys())
def test_malformed_dvc_file_is_one_line_naming_it(cli: Cli, tmp_path: Path, text: str) -> None:
    (tmp_path / ".dvc").mkdir()  # a consumer repository: verify-import refuses to run outside one
    (tmp_path / "imports").mkdir()
    (tmp_path / "imports" / "m.manifest.json.dvc").write_text(text, encoding="utf-8")
    line = assert_clean_failure(cli("verify-import"), 2)
    assert line.startswith("corpusprov: error: imports/m.manifest.json.dvc: "), line


def test_the_fixture_lock_verifies(cli: Cli, repo: tuple[Path, dict[str, Any], bytes]) -> None:
    root, document, _ = repo
    (root / "dvc.lock").write_text(dvc_lock_for(root, document), encoding="utf-8")
    assert cli("verify").exit_code == 0


@pytest.mark.parametrize("listing", ['["a.jsonl", 1]', '{"relpath": "a.jsonl"}', "[[[[]]]]", "null"])
def test_a_malformed_cached_dir_listing_is_not_an_internal_error(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes], listing: str
) -> None:
    root, document, _ = repo
    (root / "dvc.lock").write_text(dvc_lock_for(root, document), encoding="utf-8")
    md5 = document["input_folders"][0]["dvc_dir_md5"]
    cached = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cached.parent.mkdir(parents=True)
    cached.write_text(listing, encoding="utf-8")
    (root / "in" / "a.jsonl").write_bytes(b"changed\n")  # so verify looks into the listing
    result = cli("verify")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stderr == ""


def test_a_lock_md5_never_names_a_path(cli: Cli, repo: tuple[Path, dict[str, Any], bytes]) -> None:
    root, document, secret = repo
    lock = dvc_lock_for(root, document).replace(
        document["input_folders"][0]["dvc_dir_md5"], f"../../../../../{root.name}-secret/x.dir"
    )
    (root / f"{root.name}-secret").mkdir(exist_ok=True)
    (root.parent / f"{root.name}-secret" / "x.dir").write_text('[{"relpath": "leak", "md5": "f00"}]', encoding="utf-8")
    (root / "dvc.lock").write_text(lock, encoding="utf-8")
    result = cli("verify")
    assert result.exit_code == 1, result.output
    assert "leak" not in result.output and _leaks(result.output, secret) == []


@pytest.mark.parametrize("command", [("verify",), ("trace", "merge", "crf=20")])
def test_a_manifest_link_leading_outside_is_not_read(
    cli: Cli, repo: tuple[Path, dict[str, Any], bytes], command: tuple[str, ...]
) -> None:
    root, _, _ = repo
    outside = root.parent / f"{root.name}-secret" / "m.json"
    outside.write_text('{"secret-field": "leak"}', encoding="utf-8")
    (root / MANIFEST).unlink()
    (root / MANIFEST).symlink_to(outside)
    result = cli(*command)
    assert result.exit_code in (1, 2), result.output
    assert "leak" not in result.output and "secret-field" not in result.output, result.output
    assert "outside" in result.output


def test_verify_import_does_not_hash_a_link_leading_outside(cli: Cli, tmp_path: Path) -> None:
    secret = write_jsonl(tmp_path.parent / f"{tmp_path.name}-secret" / "secret.jsonl", SECRET_ROWS)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "imports").mkdir()
    (tmp_path / "imports" / "m.manifest.json").symlink_to(secret)
    (tmp_path / "imports" / "m.manifest.json.dvc").write_text(
        "deps:\n- path: out/m.manifest.json\n  repo: {url: ../src, rev_lock: abc}\n"
        "outs:\n- path: m.manifest.json\n  md5: '" + "0" * 32 + "'\n",
        encoding="utf-8",
    )
    result = cli("verify-import")
    assert result.exit_code == 1, result.output
    assert _leaks(result.output, secret.read_bytes()) == [], result.output
    assert "outside" in result.output
