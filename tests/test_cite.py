"""`corpusprov cite`: model-card citations (Markdown, BibTeX, JSON) of a built corpus, through the real CLI.

The golden test pins the Markdown for the aggregate build of the bundled sample corpora
(`corpusprov sample` defaults, then `corpusprov aggregate` with the repository's params.yaml) in
``tests/golden/cite-aggregate.md``. Regenerate it after a deliberate change with
``CORPUSPROV_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_cite.py`` and review the diff.

Determinism: the build runs in a folder with a ``.dvc`` folder but no git repository, so the
manifest records no commit (the citation says so: a fixed line) and there is no dvc.lock (also a
fixed line). The only wall-clock facts are the manifest's start and finish times, which the
citation prints on the one ``- Built:`` line; the comparison replaces exactly that line. A fixed
GIT_COMMITTER_DATE commit would also work, but the commit hash would then depend on every
committed byte (params.yaml), so the golden would churn for unrelated edits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT, Cli

GOLDEN = Path(__file__).parent / "golden" / "cite-aggregate.md"
MOS = "out/mos.jsonl"
GRID = "out/grid.jsonl"
BUILT_LINE = re.compile(r"^- Built: \S+ to \S+ \(UTC\)$", re.MULTILINE)
ENTRY = re.compile(r"^@misc\{([^,\s]+),$", re.MULTILINE)


def build(cli: Cli, root: Path, *sample: str) -> Path:
    """A repository root (a .dvc folder, no git) with the sample shards merged and aggregated."""
    (root / ".dvc").mkdir(exist_ok=True)
    shutil.copy2(REPO_ROOT / "params.yaml", root / "params.yaml")
    for args in (
        ("sample", "--out", "raw", *sample),
        ("merge", "raw/encode", "-o", GRID, "--params", "params.yaml"),
        ("aggregate", "raw/mos", "-o", MOS, "--params", "params.yaml"),
    ):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def repo(cli: Cli, tmp_path: Path) -> Path:
    return build(cli, tmp_path)


def manifest_of(repo: Path, corpus: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((repo / f"{corpus}.manifest.json").read_text("utf-8"))
    return document


def cite(cli: Cli, corpus: str, *extra: str) -> str:
    result = cli("cite", f"{corpus}.manifest.json", *extra)
    assert result.exit_code == 0, result.stderr
    text: str = result.stdout
    return text


def normalised(markdown: str) -> str:
    return BUILT_LINE.sub("- Built: <start> to <finish> (UTC)", markdown)


@pytest.mark.usefixtures("repo")
def test_golden_markdown_for_the_sample_aggregate(cli: Cli) -> None:
    markdown = cite(cli, MOS)
    assert len(BUILT_LINE.findall(markdown)) == 1, "the times line is the one thing normalised; it must exist"
    if os.environ.get("CORPUSPROV_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(normalised(markdown), "utf-8")
    assert normalised(markdown) == GOLDEN.read_text("utf-8")


def test_markdown_lists_every_corpus_in_the_output_with_its_licence(cli: Cli, repo: Path) -> None:
    # Against the manifest and the corpus rows, not the golden: a wrong golden cannot hide a dropped corpus.
    markdown = cite(cli, MOS)
    conversions = manifest_of(repo, MOS)["scale_conversions"]
    in_output = {json.loads(line)["corpus_source"] for line in (repo / MOS).read_text("utf-8").splitlines()}
    assert in_output == {conversion["corpus"] for conversion in conversions}
    table = {line.split(" | ")[0].lstrip("| "): line for line in markdown.splitlines() if line.startswith("| ")}
    for conversion in conversions:
        row = table[conversion["corpus"]]
        assert f"| {conversion['rows_out']} |" in row
        assert conversion["licence"] in row
        assert conversion["citation"] in row
        assert conversion["formula"] in row


def test_markdown_says_plainly_what_is_not_recorded(cli: Cli, repo: Path) -> None:
    markdown = cite(cli, MOS)
    assert "- Git commit: none recorded (built outside a git commit)" in markdown
    assert "- dvc.lock: no dvc.lock (built outside DVC)" in markdown
    counters = manifest_of(repo, MOS)["counters"]
    rejected = sum(count for name, count in counters.items() if name.startswith("rejected_"))
    assert rejected > 0
    assert f"- Rows rejected: {rejected} (" in markdown
    assert f"same_corpus_duplicates {counters['same_corpus_duplicates']}" in markdown


def unescape(value: str) -> str:
    """Inverse of the BibTeX escaping, to compare a field with the text it was made from."""
    for escaped, char in (
        (r"\textbackslash{}", "\\"),
        (r"\textasciicircum{}", "^"),
        (r"\textasciitilde{}", "~"),
    ):
        value = value.replace(escaped, char)
    return re.sub(r"\\([{}&%$#_])", r"\1", value)


def unescaped_specials(value: str) -> list[str]:
    """BibTeX specials in a field value that are not escaped (after the ``\\text...{}`` macros are removed)."""
    bare = re.sub(r"\\text(backslash|asciicircum|asciitilde)\{\}", "", value)
    return re.findall(r"(?<!\\)[&%$#_{}^~]", bare)


def bibtex_entries(text: str) -> dict[str, dict[str, str]]:
    """A small BibTeX reader: entries by key, each field's braced value; asserts braces balance."""
    depth = 0
    for index, char in enumerate(text):
        if char in "{}" and (index == 0 or text[index - 1] != "\\"):
            depth += 1 if char == "{" else -1
            assert depth >= 0, f"unbalanced '}}' at {index}"
    assert depth == 0, "unbalanced braces"
    entries: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        match = ENTRY.match(block)
        assert match, block
        assert block.endswith("\n}"), block
        fields = dict(re.findall(r"^  (\w+) = \{(.*)\},?$", block, re.MULTILINE))
        assert match[1] not in entries
        entries[match[1]] = fields
    return entries


def test_bibtex_has_the_build_and_one_entry_per_source_corpus(cli: Cli, repo: Path) -> None:
    entries = bibtex_entries(cite(cli, MOS, "--format", "bibtex"))
    manifest = manifest_of(repo, MOS)
    sha256 = manifest["outputs"][0]["sha256"]
    build_key = f"corpusprov-aggregate-{sha256[:12]}"
    conversions = manifest["scale_conversions"]
    assert len(entries) == 1 + len(conversions)
    assert sha256 in entries[build_key]["note"]
    notes = sorted(unescape(fields["note"]) for key, fields in entries.items() if key != build_key)
    assert notes == sorted(conversion["citation"] for conversion in conversions)


def test_json_round_trips_with_the_sha256_on_disk(cli: Cli, repo: Path) -> None:
    text = cite(cli, MOS, "--format", "json")
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert document["sha256"] == hashlib.sha256((repo / MOS).read_bytes()).hexdigest()
    assert document["path"] == MOS
    assert document["lock"] is None
    assert document["git_commit"] is None
    assert cite(cli, MOS, "--format", "json") == text, "the same manifest gives the same bytes"


def test_merge_manifest_lists_each_shard_with_rows_read_and_kept(cli: Cli, repo: Path) -> None:
    markdown = cite(cli, GRID)
    manifest = manifest_of(repo, GRID)
    assert "## Training data: `out/grid.jsonl`" in markdown
    for record in manifest["inputs"]:
        assert f"| {record['path']} | {record['rows_read']} | {record['counters']['rows_out']} |" in markdown
    assert f"- Duplicates dropped: duplicates {manifest['counters']['duplicates']}" in markdown
    assert "keep the first occurrence of each key" in markdown
    entries = bibtex_entries(cite(cli, GRID, "--format", "bibtex"))
    assert list(entries) == [f"corpusprov-merge-{manifest['outputs'][0]['sha256'][:12]}"]


def write_lock(repo: Path, md5: str) -> None:
    lock = {
        "schema": "2.0",
        "stages": {"aggregate": {"cmd": "corpusprov aggregate", "deps": [], "outs": [{"path": MOS, "md5": md5}]}},
    }
    (repo / "dvc.lock").write_text(json.dumps(lock), "utf-8")  # JSON is YAML


@pytest.mark.parametrize(
    ("same_md5", "verdict"),
    [(True, "the same md5 as the manifest"), (False, "a DIFFERENT md5 from the manifest")],
)
def test_dvc_lock_evidence(cli: Cli, repo: Path, same_md5: bool, verdict: str) -> None:
    md5 = manifest_of(repo, MOS)["outputs"][0]["md5"] if same_md5 else "0" * 32
    write_lock(repo, md5)
    lock_sha256 = hashlib.sha256((repo / "dvc.lock").read_bytes()).hexdigest()
    markdown = cite(cli, MOS)
    assert f"- dvc.lock: `dvc.lock` sha256 `{lock_sha256}`; stage `aggregate` lists this corpus with {verdict}" in (
        markdown
    )


def test_works_from_a_subfolder(cli: Cli, repo: Path) -> None:
    (repo / "sub").mkdir()
    result = Cli(cli.runner, repo / "sub")("cite", f"../{MOS}.manifest.json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == cite(cli, MOS)


@pytest.mark.parametrize("path", ["missing.manifest.json", "out"])
@pytest.mark.usefixtures("repo")
def test_bad_manifest_path_is_one_line_exit_2(cli: Cli, path: str) -> None:
    result = cli("cite", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"corpusprov: error: {path}: manifest ")
    assert "Traceback" not in result.stderr


CITATION_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("&%{}_$#^~\\ "),
        st.characters(blacklist_categories=("Cs", "Cc")),
    ),
    min_size=1,
    max_size=40,
).filter(lambda text: text.strip() != "")


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cite")
    return build(Cli(CliRunner(), root), root, "--rows", "60")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(citation=CITATION_TEXT, licence=CITATION_TEXT)
def test_bibtex_specials_and_non_ascii_survive(shared_repo: Path, citation: str, licence: str) -> None:
    manifest = manifest_of(shared_repo, MOS)
    manifest["scale_conversions"][0]["citation"] = citation
    manifest["scale_conversions"][0]["licence"] = licence
    edited = shared_repo / "edited.manifest.json"
    edited.write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    run = Cli(CliRunner(), shared_repo)
    result = run("cite", "edited.manifest.json", "--format", "bibtex")
    assert result.exit_code == 0, result.stderr
    entries = bibtex_entries(result.stdout)
    source = entries["corpus-" + re.sub(r"[^a-z0-9]+", "-", manifest["scale_conversions"][0]["corpus"])]
    assert unescaped_specials(source["note"]) == []
    assert unescaped_specials(source["license"]) == []
    assert unescape(source["note"]) == " ".join(citation.split())
    assert unescape(source["license"]) == " ".join(licence.split())
    document = json.loads(run("cite", "edited.manifest.json", "--format", "json").stdout)
    assert document["sources"][0]["citation"] == citation
