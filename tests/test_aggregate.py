"""aggregate: label resolution, the dedup resolver's rules, sorting, accounting, manifest, memory."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusprov.record.manifest import accounting_problems, load_manifest, schema_problems
from tests.conftest import REPO_ROOT, Cli, write_jsonl

SCALES_ONLY = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8")


def _params(folder: Path, extra: str = "") -> None:
    """The shipped params, with lines appended to the aggregate group."""
    text = SCALES_ONLY
    if extra:
        text = text.replace("  range_slack: 0.05\n", "  range_slack: 0.05\n" + extra)
    (folder / "params.yaml").write_text(text, encoding="utf-8")


def mos_row(src: str, mos: float, corpus: str, std: Any = 0.5, sha: str | None = None, **more: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"src": src, "src_sha256": sha or f"sha-{src}", "mos": mos, "corpus": corpus}
    if std is not ...:
        row["mos_std_dev"] = std
    row.update(more)
    return row


def _out(folder: Path, name: str = "u.jsonl") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines()]


def _run(cli: Cli, *inputs: str) -> Any:
    result = cli("aggregate", *inputs, "--output", "u.jsonl")
    assert result.exit_code == 0, result.output
    manifest, document = load_manifest(cli.cwd / "u.jsonl.manifest.json", "m")
    assert schema_problems(document) == []
    assert accounting_problems(manifest) == []
    return manifest


def test_unified_rows_carry_native_and_resolved_fields(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "k.jsonl", [mos_row("a.mp4", 4.2, "konvid-1k", width=960)])
    write_jsonl(tmp_path / "d.jsonl", [mos_row("b.mp4", 25.0, "live-vqa")])
    _run(cli, "k.jsonl", "d.jsonl")
    first, second = _out(tmp_path)
    assert first == {
        "src": "a.mp4",
        "src_sha256": "sha-a.mp4",
        "width": 960,
        "height": 0,
        "framerate": 0.0,
        "duration_s": 0.0,
        "pix_fmt": "",
        "encoder_upstream": "",
        "mos": 25.0 * 4.2 - 25.0,
        "mos_native": 4.2,
        "mos_native_scale": "1-5-acr",
        "mos_std_dev": 0.5,
        "n_ratings": 0,
        "corpus": "konvid-1k",
        "corpus_source": "konvid-1k",
        "corpus_version": "",
        "ingested_at_utc": "",
    }
    assert second["mos"] == 75.0  # DMOS 25 of 0-100, lower is better
    assert second["corpus_source"] == "live-vqa"
    assert second["mos_native_scale"] == "0-100-dmos"


def test_passthrough_keeps_the_input_row(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    text = (tmp_path / "params.yaml").read_text(encoding="utf-8")
    (tmp_path / "params.yaml").write_text(
        text.replace("output_row: unified", "output_row: passthrough"), encoding="utf-8"
    )
    write_jsonl(tmp_path / "k.jsonl", [mos_row("a.mp4", 3, "konvid-1k", width=960, extra="kept")])
    manifest = _run(cli, "k.jsonl")
    assert _out(tmp_path) == [
        {
            "src": "a.mp4",
            "src_sha256": "sha-a.mp4",
            "mos": 50.0,
            "mos_native": 3.0,
            "mos_native_scale": "1-5-acr",
            "corpus": "konvid-1k",
            "corpus_source": "konvid-1k",
            "mos_std_dev": 0.5,
            "width": 960,
            "extra": "kept",
        }
    ]
    assert manifest.policy["output_row"] == "passthrough"
    assert manifest.counters["fields_dropped_rows"] == 0


def test_label_resolution_order(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path, "  overrides:\n    forced.jsonl: lsvq\n")
    text = (tmp_path / "params.yaml").read_text(encoding="utf-8").replace("  overrides: {}\n", "")
    (tmp_path / "params.yaml").write_text(text, encoding="utf-8")
    write_jsonl(
        tmp_path / "plain.jsonl",
        [mos_row("a", 3.0, "konvid-1k"), mos_row("b", 3.0, "konvid-1k", corpus_source="youtube-ugc")],
    )
    write_jsonl(tmp_path / "forced.jsonl", [mos_row("c", 3.0, "konvid-1k", corpus_source="youtube-ugc")])
    manifest = _run(cli, "plain.jsonl", "forced.jsonl")
    by_src = {row["src"]: row["corpus_source"] for row in _out(tmp_path)}
    assert by_src == {"a": "konvid-1k", "b": "youtube-ugc", "c": "lsvq"}
    assert [record.label_override for record in manifest.inputs] == [None, "lsvq"]
    assert manifest.extra["overrides"] == [{"input": "forced.jsonl", "label": "lsvq"}]


@pytest.mark.parametrize(
    ("rows", "winner", "cross", "same"),
    [
        # smallest positive std-dev wins across corpora
        ([("konvid-1k", 0.6), ("lsvq", 0.4), ("youtube-ugc", 0.5)], 1, 2, 0),
        # unknown std-dev (0, missing, NaN, negative, not a number) loses to any known one
        ([("konvid-1k", 0), ("lsvq", 0.9)], 1, 1, 0),
        ([("konvid-1k", ...), ("lsvq", 0.9)], 1, 1, 0),
        ([("konvid-1k", math.nan), ("lsvq", 0.9)], 1, 1, 0),
        ([("konvid-1k", -0.1), ("lsvq", 0.9)], 1, 1, 0),
        ([("konvid-1k", "n/a"), ("lsvq", 0.9)], 1, 1, 0),
        ([("konvid-1k", True), ("lsvq", 0.9)], 1, 1, 0),
        # a numeric string is the number it spells, as in the original
        ([("konvid-1k", "0.1"), ("lsvq", 0.9)], 0, 1, 0),
        # ties keep the current winner, known or unknown
        ([("konvid-1k", 0.5), ("lsvq", 0.5)], 0, 1, 0),
        ([("lsvq", ...), ("konvid-1k", 0)], 0, 1, 0),
        # a row of the winner's own corpus is dropped, even with a smaller std-dev, and counted
        ([("konvid-1k", 0.5), ("konvid-1k", 0.1)], 0, 0, 1),
        # ... but only the current winner's corpus counts: a corpus that lost may win later
        ([("konvid-1k", 0.5), ("lsvq", 0.3), ("konvid-1k", 0.1)], 2, 2, 0),
        ([("konvid-1k", 0.5), ("lsvq", 0.3), ("lsvq", 0.1)], 1, 1, 1),
    ],
)
def test_resolver_rules(
    cli: Cli, tmp_path: Path, rows: list[tuple[str, Any]], winner: int, cross: int, same: int
) -> None:
    """The original's rule, each row offered against the current winner (passthrough rows,
    so a non-numeric std-dev is judged by the resolver, not refused as a bad field)."""
    _params(tmp_path)
    text = (tmp_path / "params.yaml").read_text(encoding="utf-8")
    (tmp_path / "params.yaml").write_text(
        text.replace("output_row: unified", "output_row: passthrough"), encoding="utf-8"
    )
    write_jsonl(
        tmp_path / "a.jsonl",
        [mos_row(f"clip-{i}", 3.0, corpus, std=std, sha="same") for i, (corpus, std) in enumerate(rows)],
    )
    manifest = _run(cli, "a.jsonl")
    out = _out(tmp_path)
    assert [row["src"] for row in out] == [f"clip-{winner}"]
    assert out[0]["corpus_source"] == rows[winner][0]
    assert manifest.counters["cross_corpus_duplicates"] == cross
    assert manifest.counters["same_corpus_duplicates"] == same


def test_rows_without_the_key_are_keyed_by_src_and_corpus(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    text = (
        (tmp_path / "params.yaml")
        .read_text(encoding="utf-8")
        .replace("  required_keys:\n  - src\n  - src_sha256\n", "  required_keys:\n  - src\n")
    )
    (tmp_path / "params.yaml").write_text(text, encoding="utf-8")
    rows = [
        {"src": "x", "mos": 3.0, "corpus": "lsvq"},
        {"src": "x", "mos": 4.0, "corpus": "lsvq"},
        {"src": "x", "mos": 2.0, "corpus": "konvid-1k"},
        {"src": "x", "mos": 2.0, "corpus": "konvid-1k", "src_sha256": None},
    ]
    write_jsonl(tmp_path / "a.jsonl", rows)
    manifest = _run(cli, "a.jsonl")
    assert [(row["corpus_source"], row["mos_native"]) for row in _out(tmp_path)] == [("konvid-1k", 2.0), ("lsvq", 3.0)]
    assert manifest.counters["same_corpus_duplicates"] == 2
    assert manifest.counters["cross_corpus_duplicates"] == 0


def test_output_sorted_by_corpus_then_sha_then_src(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            mos_row("z", 3.0, "lsvq", sha="b"),
            mos_row("y", 3.0, "konvid-1k", sha="c"),
            mos_row("x", 3.0, "lsvq", sha="a"),
            mos_row("w", 3.0, "konvid-1k", sha="a"),
        ],
    )
    _run(cli, "a.jsonl")
    # w (konvid-1k, 3.0, std 0.5) ties x (lsvq) on sha "a": the current winner x stays.
    assert [(row["corpus_source"], row["src_sha256"], row["src"]) for row in _out(tmp_path)] == [
        ("konvid-1k", "c", "y"),
        ("lsvq", "a", "x"),
        ("lsvq", "b", "z"),
    ]


def test_keyless_rows_sort_by_the_originals_key_text(cli: Cli, tmp_path: Path) -> None:
    """Rows without a sha sort as the original's ``__nokey__/<src>/<corpus>`` keys do."""
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [{**mos_row(src, 3.0, "lsvq"), "src_sha256": ""} for src in ("a/b", "a b", "a")])
    _run(cli, "a.jsonl")
    # "__nokey__/a b/lsvq" < "__nokey__/a/b/lsvq" < "__nokey__/a/lsvq" (space < slash < letter)
    assert [row["src"] for row in _out(tmp_path)] == ["a b", "a/b", "a"]


def test_every_row_is_accounted_for(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            mos_row("a", 3.0, "konvid-1k", sha="s1"),
            mos_row("b", 9.0, "lsvq"),
            mos_row("c", 3.0, "nope"),
            mos_row("d", math.nan, "lsvq"),
        ],
    )
    write_jsonl(
        tmp_path / "b.jsonl", [mos_row("a2", 3.5, "lsvq", std=0.1, sha="s1"), mos_row("e", 50.0, "waterloo-ivc-4k")]
    )
    manifest = _run(cli, "a.jsonl", "b.jsonl")
    out = _out(tmp_path)
    rejects = [json.loads(line) for line in (tmp_path / "u.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["reason"], r["path"], r["line"]) for r in rejects] == [
        ("bad_scale", "a.jsonl", 2),
        ("unknown_corpus", "a.jsonl", 3),
        ("non_finite_mos", "a.jsonl", 4),
    ]
    counters = manifest.counters
    assert counters["rows_in"] == 6
    assert len(out) == counters["rows_out"] == 2
    assert counters["cross_corpus_duplicates"] == 1
    assert (
        len(rejects)
        == counters["rejected_bad_scale"] + counters["rejected_unknown_corpus"] + counters["rejected_non_finite_mos"]
    )
    # a.jsonl's s1 row was displaced by b.jsonl's: the duplicate is counted against a.jsonl
    a_counts, b_counts = (record.counters for record in manifest.inputs)
    assert (a_counts["rows_out"], a_counts["cross_corpus_duplicates"]) == (0, 1)
    assert (b_counts["rows_out"], b_counts["cross_corpus_duplicates"]) == (2, 0)
    conversions = {item["corpus"]: item["rows_out"] for item in manifest.extra["scale_conversions"]}
    assert conversions == {"lsvq": 1, "waterloo-ivc-4k": 1}
    assert manifest.extra["scale_conversions"][0]["citation"]


def test_each_input_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEC: a stage reads each input once (the bytes parsed are the bytes hashed)."""
    from corpusprov.io.jsonl import JsonlReader
    from corpusprov.stages.run import StageRequest, run_aggregate

    monkeypatch.chdir(tmp_path)
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [mos_row("a", 3.0, "lsvq", sha="s"), mos_row("b", 2.0, "konvid-1k", sha="s")])
    write_jsonl(tmp_path / "b.jsonl", [mos_row("c", 4.0, "youtube-ugc")])
    reads: list[str] = []
    original = JsonlReader.blocks

    def counting(self: JsonlReader, *args: Any, **kwargs: Any) -> Any:
        reads.append(self.display)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(JsonlReader, "blocks", counting)
    run_aggregate(StageRequest(inputs=("a.jsonl", "b.jsonl"), output=Path("u.jsonl")))
    assert reads == ["a.jsonl", "b.jsonl"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".corpusprov-tmp-")] == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_output_is_the_same_for_any_row_order_within_an_input(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """With distinct std-devs the winners do not depend on the order rows arrive in."""
    from corpusprov.stages.run import StageRequest, run_aggregate

    corpora = ["konvid-1k", "lsvq", "youtube-ugc", "waterloo-ivc-4k", "live-vqa"]
    count = data.draw(st.integers(1, 20))
    stds = data.draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    rows = []
    used: set[tuple[str, str]] = set()
    for index in range(count):
        corpus = data.draw(st.sampled_from(corpora))
        sha = data.draw(st.sampled_from(["s1", "s2", "s3", "s4"]))
        if (corpus, sha) in used:
            continue  # same-corpus duplicates keep the first by design: order matters there
        used.add((corpus, sha))
        top = 100 if corpus in ("waterloo-ivc-4k", "live-vqa") else 5
        rows.append(mos_row(f"clip-{index}", top / 2, corpus, std=stds[index] / 1000, sha=sha))
    order = data.draw(st.permutations(rows))
    folder = tmp_path_factory.mktemp("order")
    _params(folder)
    write_jsonl(folder / "a.jsonl", rows)
    write_jsonl(folder / "b.jsonl", list(order))
    old = Path.cwd()
    os.chdir(folder)
    try:
        run_aggregate(StageRequest(inputs=("a.jsonl",), output=Path("one.jsonl")))
        run_aggregate(StageRequest(inputs=("b.jsonl",), output=Path("two.jsonl")))
    finally:
        os.chdir(old)
    assert (folder / "one.jsonl").read_bytes() == (folder / "two.jsonl").read_bytes()


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child forked from a big
# test process would report the parent's size.
_PEAK_SCRIPT = """
import sys
from pathlib import Path
from corpusprov.stages.run import StageRequest, run_aggregate
run_aggregate(StageRequest(inputs=(sys.argv[1],), output=Path(sys.argv[2]),
                           params_path=Path(sys.argv[3]), params_explicit=True))
status = Path("/proc/self/status").read_text()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""


def _peak_kib(folder: Path, width: int, rows: int) -> int:
    from corpusprov.sample import generate_samples

    generate_samples(folder / f"w{width}", seed=3, rows=10, mos_rows=rows, extra_width=width)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK_SCRIPT,
            str(folder / f"w{width}" / "mos"),
            str(folder / f"out{width}.jsonl"),
            str(folder / "params.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_row_width(tmp_path: Path) -> None:
    """Same row count, every row 2 KB wider: peak RSS stays within 10%."""
    _params(tmp_path)
    rows = 40_000
    narrow = _peak_kib(tmp_path, 0, rows)
    wide = _peak_kib(tmp_path, 2048, rows)
    wide_bytes = sum(p.stat().st_size for p in (tmp_path / "w2048" / "mos").iterdir())
    narrow_bytes = sum(p.stat().st_size for p in (tmp_path / "w0" / "mos").iterdir())
    assert wide_bytes > narrow_bytes + rows * 2000  # the rows really are wider
    assert wide <= narrow * 1.10, f"peak RSS {narrow} KiB narrow vs {wide} KiB wide"


@pytest.mark.parametrize(("units", "winner"), [("unified", "waterloo-ivc-4k"), ("native", "lsvq")])
def test_std_devs_compare_on_one_axis_unless_told_native(cli: Cli, tmp_path: Path, units: str, winner: str) -> None:
    """0.4 on a 1-5 scale is 10 on 0-100: less certain than a 0-100 corpus's 8."""
    _params(tmp_path)
    text = (
        (tmp_path / "params.yaml")
        .read_text(encoding="utf-8")
        .replace("std_dev_units: native", f"std_dev_units: {units}")
    )
    (tmp_path / "params.yaml").write_text(text, encoding="utf-8")
    write_jsonl(
        tmp_path / "a.jsonl",
        [mos_row("x", 4.0, "lsvq", std=0.4, sha="s"), mos_row("x", 80.0, "waterloo-ivc-4k", std=8.0, sha="s")],
    )
    manifest = _run(cli, "a.jsonl")
    assert [row["corpus_source"] for row in _out(tmp_path)] == [winner]
    assert manifest.policy["dedup"]["std_dev_units"] == units
