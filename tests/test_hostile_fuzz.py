"""Every command on random and mutated files: exit 0, 1 or 2, at most one stderr line, no traceback.

Issue 13, point 8: manifests, ``dvc.lock``, ``dvc.yaml``, ``.dvc`` files, params and shards
are all untrusted. Each test writes one hostile file into a small real repository (a real
``merge`` run made its manifest), runs the real CLI in-process, and puts the file back.
Examples are derandomized and bounded so the whole file runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT, Cli, encode_row, write_jsonl
from tests.hostile import MANIFEST, dvc_lock_for, mini_repo

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [
            "../outside.jsonl",
            "/etc/passwd",
            "",
            "~/x",
            "a\nb",
            "in/../../x",
            ".",
            "in",
            "\x1b[31mred",
            2**70,
            -1,
            0,
            1e308,
            -0.0,
            True,
            None,
            "md5",
            "0" * 32,
            "d41d8cd98f00b204e9800998ecf8427e.dir",
        ]
    ),
    st.lists(st.sampled_from(["x", 1, None, "../y"]), max_size=3),
    st.dictionaries(st.sampled_from(["path", "md5", "hash", "x"]), st.sampled_from(["../z", 1, None]), max_size=3),
    st.recursive(st.none(), lambda inner: st.lists(inner, max_size=2), max_leaves=4),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(document))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return copy


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one to three subtrees replaced by hostile values (or deleted)."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        if path and draw(st.booleans()) and isinstance(document, dict | list):
            copy = json.loads(json.dumps(document))
            target = copy
            for part in path[:-1]:
                target = target[part]
            del target[path[-1]]
            document = copy
        else:
            document = _replace(document, path, draw(HOSTILE_VALUES))
    return document


RANDOM_BYTES = st.binary(max_size=300)


def _yaml_text(value: Any) -> bytes:
    # JSON is YAML; a hostile YAML-only spelling is added by the alias and tag examples.
    return json.dumps(value).encode()


class _Originals(dict[str, bytes]):
    """The fixture's files, with a short repr (hypothesis prints its arguments on failure)."""

    def __repr__(self) -> str:
        return f"<{len(self)} original files>"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, bytes]]]:
    root = tmp_path_factory.mktemp("hostile-fuzz")
    old = Path.cwd()
    cli = Cli(CliRunner(), root)
    document = mini_repo(cli, root)
    (root / "dvc.lock").write_text(dvc_lock_for(root, document), encoding="utf-8")
    shutil.copy(root / MANIFEST, root / "other.manifest.json")
    # A consumer-side import: a .dvc file that points at the manifest.
    (root / "imported").mkdir()
    shutil.copy(root / MANIFEST, root / "imported" / "corpus.jsonl.manifest.json")
    (root / "imported" / "corpus.jsonl.manifest.json.dvc").write_text(
        "deps:\n- path: out/corpus.jsonl.manifest.json\n  repo:\n    url: ../..\n    rev_lock: "
        + "a" * 40
        + "\nouts:\n- md5: "
        + "0" * 32
        + "\n  path: corpus.jsonl.manifest.json\n",
        encoding="utf-8",
    )
    originals = _Originals(
        {
            name: (root / name).read_bytes()
            for name in (
                MANIFEST,
                "dvc.lock",
                "dvc.yaml",
                "params.yaml",
                "in/a.jsonl",
                "imported/corpus.jsonl.manifest.json.dvc",
            )
        }
    )
    yield root, originals
    os.chdir(old)


def _run(root: Path, originals: dict[str, bytes], name: str, data: bytes, *args: str) -> Any:
    (root / name).write_bytes(data)
    try:
        result = Cli(CliRunner(), root)(*args)
    finally:
        for path, content in originals.items():
            (root / path).write_bytes(content)
        shutil.rmtree(root / "replayed", ignore_errors=True)
        shutil.rmtree(root / "fuzz-out", ignore_errors=True)
    assert result.exit_code in (0, 1, 2), f"exit {result.exit_code}: {result.stderr}"
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.output
    assert "internal error" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) <= 1, result.stderr
    if result.exit_code == 2 or (result.exit_code == 1 and result.stdout == ""):
        assert len(lines) == 1 and lines[0].startswith("corpusprov: "), result.output
    return result


MANIFEST_COMMANDS = [
    ("manifest", "validate", MANIFEST),
    ("manifest", "show", MANIFEST),
    ("verify",),
    ("trace", "merge", "crf=20"),
    ("replay", MANIFEST),
    ("diff", MANIFEST, "other.manifest.json"),
    ("diff", "other.manifest.json", MANIFEST),
]


def _manifest_document(originals: dict[str, bytes]) -> Any:
    return json.loads(originals[MANIFEST])


@FUZZ
@given(data=st.data(), command=st.sampled_from(MANIFEST_COMMANDS))
def test_manifest_readers_on_mutated_manifests(
    repo: tuple[Path, dict[str, bytes]], data: st.DataObject, command: tuple[str, ...]
) -> None:
    root, originals = repo
    document = data.draw(mutated(_manifest_document(originals)))
    _run(root, originals, MANIFEST, json.dumps(document).encode(), *command)


@FUZZ
@given(raw=RANDOM_BYTES, command=st.sampled_from(MANIFEST_COMMANDS))
def test_manifest_readers_on_random_bytes(
    repo: tuple[Path, dict[str, bytes]], raw: bytes, command: tuple[str, ...]
) -> None:
    root, originals = repo
    _run(root, originals, MANIFEST, raw, *command)


def _lock_document(originals: dict[str, bytes]) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(originals["dvc.lock"].decode())


@FUZZ
@given(data=st.data())
def test_verify_on_mutated_dvc_lock(repo: tuple[Path, dict[str, bytes]], data: st.DataObject) -> None:
    root, originals = repo
    document = data.draw(mutated(_lock_document(originals)))
    _run(root, originals, "dvc.lock", _yaml_text(document), "verify")


@FUZZ
@given(raw=RANDOM_BYTES)
def test_verify_on_random_dvc_lock(repo: tuple[Path, dict[str, bytes]], raw: bytes) -> None:
    root, originals = repo
    _run(root, originals, "dvc.lock", raw, "verify")


def _dvc_yaml_document(originals: dict[str, bytes]) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(originals["dvc.yaml"].decode())


@FUZZ
@given(data=st.data(), command=st.sampled_from([("verify",), ("trace", "merge", "crf=20"), ("diff", "HEAD", "HEAD")]))
def test_dvc_yaml_readers_on_mutated_dvc_yaml(
    repo: tuple[Path, dict[str, bytes]], data: st.DataObject, command: tuple[str, ...]
) -> None:
    root, originals = repo
    document = data.draw(mutated(_dvc_yaml_document(originals)))
    _run(root, originals, "dvc.yaml", _yaml_text(document), *command)


@FUZZ
@given(raw=RANDOM_BYTES, command=st.sampled_from([("verify",), ("trace", "merge", "crf=20")]))
def test_dvc_yaml_readers_on_random_bytes(
    repo: tuple[Path, dict[str, bytes]], raw: bytes, command: tuple[str, ...]
) -> None:
    root, originals = repo
    _run(root, originals, "dvc.yaml", raw, *command)


DVC_FILE = "imported/corpus.jsonl.manifest.json.dvc"


@FUZZ
@given(data=st.data())
def test_verify_import_on_mutated_dvc_files(repo: tuple[Path, dict[str, bytes]], data: st.DataObject) -> None:
    from ruamel.yaml import YAML

    root, originals = repo
    document = data.draw(mutated(YAML(typ="safe", pure=True).load(originals[DVC_FILE].decode())))
    _run(root, originals, DVC_FILE, _yaml_text(document), "verify-import")


@FUZZ
@given(raw=RANDOM_BYTES)
def test_verify_import_on_random_dvc_files(repo: tuple[Path, dict[str, bytes]], raw: bytes) -> None:
    root, originals = repo
    _run(root, originals, DVC_FILE, raw, "verify-import")


PARAMS_COMMANDS = [
    ("merge", "in", "--output", "fuzz-out/m.jsonl", "--params", "params.yaml"),
    ("aggregate", "in", "--output", "fuzz-out/m.jsonl", "--params", "params.yaml"),
    ("scales", "--params", "params.yaml"),
]


@FUZZ
@given(raw=RANDOM_BYTES, command=st.sampled_from(PARAMS_COMMANDS))
def test_params_readers_on_random_bytes(
    repo: tuple[Path, dict[str, bytes]], raw: bytes, command: tuple[str, ...]
) -> None:
    root, originals = repo
    _run(root, originals, "params.yaml", raw, *command)


def _shipped_params() -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))


@FUZZ
@given(data=st.data(), command=st.sampled_from(PARAMS_COMMANDS))
def test_params_readers_on_mutated_params(
    repo: tuple[Path, dict[str, bytes]], data: st.DataObject, command: tuple[str, ...]
) -> None:
    root, originals = repo
    document = data.draw(mutated(_shipped_params()))
    _run(root, originals, "params.yaml", _yaml_text(document), *command)


@FUZZ
@given(raw=RANDOM_BYTES, kind=st.sampled_from(["merge", "aggregate"]))
def test_stages_on_random_shards(repo: tuple[Path, dict[str, bytes]], raw: bytes, kind: str) -> None:
    root, originals = repo
    (root / "params-shipped.yaml").write_bytes((REPO_ROOT / "params.yaml").read_bytes())
    _run(
        root,
        originals,
        "in/a.jsonl",
        raw,
        kind,
        "in",
        "--output",
        "fuzz-out/m.jsonl",
        "--params",
        "params-shipped.yaml",
    )


def test_helpers_build_a_repo_that_verifies(tmp_path: Path) -> None:
    # The fixture's dvc.lock must agree with its manifest, or the mutations test nothing.
    cli = Cli(CliRunner(), tmp_path)
    document = mini_repo(cli, tmp_path)
    (tmp_path / "dvc.lock").write_text(dvc_lock_for(tmp_path, document), encoding="utf-8")
    result = cli("verify")
    assert result.exit_code == 0, result.output
    write_jsonl(tmp_path / "in" / "a.jsonl", [encode_row(crf=99)])
    assert cli("verify").exit_code == 1
