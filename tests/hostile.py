"""Helpers shared by the ``test_hostile_*`` files: a small repo with a manifest, and the error contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli, encode_row, write_jsonl

CORPUS = "out/corpus.jsonl"
MANIFEST = "out/corpus.jsonl.manifest.json"

#: A dvc.yaml naming the stage the mini repo runs (verify, trace and diff read it).
DVC_YAML = f"""stages:
  merge:
    cmd: corpusprov merge in --output {CORPUS}
    deps:
      - in
    params:
      - merge
    outs:
      - {CORPUS}
      - out/corpus.rejects.jsonl
      - {MANIFEST}
"""


def mini_repo(cli: Cli, root: Path) -> dict[str, Any]:
    """Shards under ``root/in``, a real ``merge`` run into ``out/`` and a dvc.yaml; the manifest as JSON."""
    write_jsonl(root / "in" / "a.jsonl", [encode_row(crf=20), encode_row(crf=21), encode_row(crf=20)])
    (root / "params.yaml").write_text("merge: {}\n", encoding="utf-8")
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    result = cli("merge", "in", "--output", CORPUS, "--params", "params.yaml")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads((root / MANIFEST).read_bytes())
    return document


def write_manifest(root: Path, document: Any, path: str = MANIFEST) -> None:
    """Write a (possibly hostile) manifest document."""
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(json.dumps(document), encoding="utf-8")


def assert_clean_failure(result: Any, *codes: int) -> str:
    """Exit in ``codes`` (default 1 or 2), exactly one ``corpusprov:`` line on stderr, no traceback."""
    allowed = codes or (1, 2)
    assert result.exit_code in allowed, f"exit {result.exit_code}: {result.stderr}"
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("corpusprov: "), lines[0]
    return str(lines[0])


def dvc_lock_for(root: Path, document: dict[str, Any]) -> str:
    """A dvc.lock as DVC 3 writes it for the mini repo's stage (agrees with the manifest on disk)."""
    import hashlib

    manifest_md5 = hashlib.md5((root / MANIFEST).read_bytes()).hexdigest()  # noqa: S324 -- DVC's id
    folder = document["input_folders"][0]
    outs = [(entry["path"], entry["md5"], entry["bytes"]) for entry in document["outputs"]]
    outs.append((MANIFEST, manifest_md5, (root / MANIFEST).stat().st_size))
    lines = [
        "schema: '2.0'",
        "stages:",
        "  merge:",
        f"    cmd: corpusprov merge in --output {CORPUS}",
        "    deps:",
        f"    - path: {folder['path']}",
        "      hash: md5",
        f"      md5: {folder['dvc_dir_md5']}",
        "    params:",
        "      params.yaml:",
        "        merge: {}",
        "    outs:",
    ]
    for path, md5, size in outs:
        lines += [f"    - path: {path}", "      hash: md5", f"      md5: {md5}", f"      size: {size}"]
    return "\n".join(lines) + "\n"
