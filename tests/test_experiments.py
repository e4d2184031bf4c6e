"""Experiments: real `dvc exp run -S`, `dvc exp show --json`, plots in headless Chromium, corpusprov diff."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_template, run

pytestmark = pytest.mark.dvc

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=8000",
]


@pytest.fixture(scope="module")
def experiments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed baseline and two experiments that pull counters in opposite directions."""
    repo = build_template(tmp_path_factory.mktemp("exp") / "repo", rows=240)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline"], repo)
    # Slack 2 admits the sample's out-of-range MOS rows; `reject` drops merge rows holding NaN.
    run(["dvc", "exp", "run", "--temp", "-n", "wide-slack", "-S", "aggregate.range_slack=2"], repo)
    run(["dvc", "exp", "run", "--temp", "-n", "strict-nan", "-S", "merge.non_finite=reject"], repo)
    return repo


def _rows(repo: Path) -> dict[str, dict[str, Any]]:
    """`dvc exp show --json` as {name: {metrics file: data}}, baseline as `main`."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    rows: dict[str, dict[str, Any]] = {}
    for entry in shown:
        for item in [entry, *[rev for exp in entry.get("experiments") or [] for rev in exp["revs"]]]:
            name = item.get("name") or item["rev"]
            metrics = item["data"].get("metrics") or {}
            rows[name] = {path: value["data"] for path, value in metrics.items()}
    return rows


def test_exp_show_carries_counters_that_move_as_the_params_say(experiments: Path) -> None:
    rows = _rows(experiments)
    base, wide, strict = rows["main"], rows["wide-slack"], rows["strict-nan"]
    headline = {
        ("merge", "grid"): {"in", "out", "dups", "rejected", "sources", "vmaf"},
        ("aggregate", "mos"): {"in", "out", "dups", "rejected", "corpora", "mean"},
    }
    for row in (base, wide, strict):
        for (stage, group), names in headline.items():
            # Only the headline figures: every counter and breakdown stays in the manifest.
            assert set(row[f"metrics/{stage}.json"]) == {group}
            assert set(row[f"metrics/{stage}.json"][group]) == names
    merge = {name: row["metrics/merge.json"]["grid"] for name, row in rows.items()}
    aggregate = {name: row["metrics/aggregate.json"]["mos"] for name, row in rows.items()}
    assert aggregate["main"]["rejected"] > aggregate["wide-slack"]["rejected"]
    assert aggregate["wide-slack"]["out"] > aggregate["main"]["out"]
    assert aggregate["wide-slack"]["mean"] != aggregate["main"]["mean"]
    assert merge["wide-slack"] == merge["main"]
    assert merge["strict-nan"]["rejected"] > merge["main"]["rejected"]
    assert merge["strict-nan"]["out"] < merge["main"]["out"]
    assert aggregate["strict-nan"] == aggregate["main"]
    assert merge["main"]["sources"] > 0 and aggregate["main"]["corpora"] == 5


def test_breakdowns_live_in_the_manifest(experiments: Path) -> None:
    manifest = json.loads((experiments / "data/unified/mos_unified.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert manifest["breakdown"]["corpus"]["lsvq"]["rows"] > 0
    manifest = json.loads((experiments / "data/merged/encode_grid.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert "vmaf_mean" in next(iter(manifest["breakdown"]["encoder"].values()))


def test_diff_names_exactly_the_changed_params_and_moved_counters(experiments: Path) -> None:
    done = run(["corpusprov", "diff", "wide-slack", "strict-nan", "--json"], experiments)
    by_stage = {item["stage"]: item for item in json.loads(done.stdout)}
    merge, aggregate = by_stage["merge"], by_stage["aggregate"]
    hosts = [item for name, item in by_stage.items() if name.startswith("merge-host@")]
    assert len(hosts) == 3
    for stage in (*hosts, merge):
        assert [change["key"] for change in stage["params_changed"]] == ["merge.non_finite"]
        assert (stage["params_changed"][0]["old"], stage["params_changed"][0]["new"]) == ("keep", "reject")
    assert [change["key"] for change in aggregate["params_changed"]] == ["aggregate.range_slack"]
    # The rows are rejected by the per-host merges, which read the raw shards: summed over them.
    moved: dict[str, int] = {}
    for host in hosts:
        for change in host["counters_changed"]:
            moved[change["name"]] = moved.get(change["name"], 0) + change["delta"]
    assert moved["rejected_non_finite_value"] > 0
    # Every row rejected now was either written or dropped as a duplicate before.
    assert moved["rows_out"] + moved.get("duplicates", 0) == -moved["rejected_non_finite_value"]
    assert {change["name"] for change in aggregate["counters_changed"]} >= {"rejected_bad_scale", "rows_out"}
    for host in hosts:
        assert host["inputs_added"] == host["inputs_removed"] == host["inputs_changed"] == []
    # The global merge read other per-host outputs (fewer rows): its diff names them.
    assert merge["inputs_changed"] and merge["inputs_added"] == merge["inputs_removed"] == []
    text = run(["corpusprov", "diff", "wide-slack", "strict-nan"], experiments).stdout
    assert "merge.non_finite: keep -> reject" in text
    assert re.search(r"rejected_non_finite_value\s+0 -> \d+ \(\+\d+\)", text)


def test_diff_of_a_build_with_itself_says_nothing_changed(experiments: Path) -> None:
    done = run(["corpusprov", "diff", "wide-slack", "wide-slack", "--exit-code"], experiments, check=False)
    assert done.returncode == 0
    assert done.stdout.count("nothing changed") == 5  # three per-host merges, merge, aggregate
    path = "data/merged/encode_grid.jsonl.manifest.json"
    same = run(["corpusprov", "diff", path, path], experiments)
    assert "nothing changed" in same.stdout
    differs = run(["corpusprov", "diff", "strict-nan", "main", "--exit-code"], experiments, check=False)
    assert differs.returncode == 1


def _render(html: Path, out: Path) -> tuple[str, Path]:
    assert CHROMIUM, "chromium is not installed (.ci/run installs Debian's chromium)"
    profile = out.parent / f"profile-{out.stem}"
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}-dom", "--dump-dom", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}-shot",
            "--window-size=1000,1400",
            f"--screenshot={out}",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dom, out


def _ink(png: Path) -> float:
    """Fraction of pixels that are not (near) white."""
    from PIL import Image

    with Image.open(png) as image:
        grey = image.convert("L")
        histogram = grey.histogram()
    return 1 - sum(histogram[240:]) / sum(histogram)


def test_plots_show_draws_readable_charts_offline(experiments: Path, tmp_path: Path) -> None:
    run(["dvc", "plots", "show", "-o", str(tmp_path / "show")], experiments)
    html = tmp_path / "show" / "index.html"
    page = html.read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in page  # Vega is inlined: the page draws with no network
    dom, shot = _render(html, tmp_path / "show.png")
    assert dom.count("<canvas") >= 3, "each plot should have drawn a canvas"
    assert "Unified MOS (0-100) per corpus" in page
    assert _ink(shot) > 0.02, "the screenshot is blank"


def test_plots_diff_overlays_two_experiments(experiments: Path, tmp_path: Path) -> None:
    run(["dvc", "plots", "diff", "wide-slack", "strict-nan", "-o", str(tmp_path / "diff")], experiments)
    html = tmp_path / "diff" / "index.html"
    specs = [
        json.loads(match)
        for match in re.findall(r"var spec = (\{.*?\});\s*vegaEmbed", html.read_text(encoding="utf-8"), re.S)
    ]
    assert len(specs) == 3
    for spec in specs:
        assert {point["rev"] for point in spec["data"]["values"]} == {"wide-slack", "strict-nan"}
    dom, shot = _render(html, tmp_path / "diff.png")
    assert dom.count("<canvas") >= 3
    assert _ink(shot) > 0.02


def test_exp_run_set_changes_exactly_one_line_of_params(tmp_path: Path) -> None:
    """params.yaml is written the way DVC writes YAML: `-S` rewrites only the value it sets."""
    repo = build_template(tmp_path / "repo", rows=30)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline"], repo)
    for setting, expected in (
        (
            "merge.dedup.keep=last",
            [
                "-    keep: first          # first | last: which occurrence of a key wins",
                "+    keep: last           # first | last: which occurrence of a key wins",
            ],
        ),
        ("aggregate.dedup.std_dev_units=unified", ["-    std_dev_units: native", "+    std_dev_units: unified"]),
    ):
        run(["dvc", "exp", "run", "-S", setting], repo)
        diff = run(["git", "diff", "-U0", "params.yaml"], repo).stdout
        changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        assert changed == expected, diff
        run(["git", "checkout", "params.yaml"], repo)
