"""The shipped scale map: every corpus of params.yaml maps min, max and mid onto 0, 100 and 50.

Parametrised from the template's own ``params.yaml`` (loaded through the product's params
loader), so a corpus added there is covered without touching this file. Each corpus is
checked twice: on ``ScaleEntry.to_unified`` directly, and end to end through
``corpusprov aggregate``, reading the unified rows back. The range slack admits a score just
outside the native range without clipping it, and rejects one just beyond (``bad_scale``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from corpusprov.params.load import load_params
from corpusprov.params.scales import ScaleEntry, aggregate_params
from corpusprov.params.stages import AggregateParams
from tests.conftest import REPO_ROOT, write_jsonl

SHIPPED_PARAMS = REPO_ROOT / "params.yaml"
PARAMS: AggregateParams = aggregate_params(load_params(SHIPPED_PARAMS, "params.yaml", required=True))
SCALES = [pytest.param(scale, id=corpus) for corpus, scale in PARAMS.scales.items()]
ACR_1_5 = [
    pytest.param(scale, id=corpus)
    for corpus, scale in PARAMS.scales.items()
    if (scale.native_min, scale.native_max) == (1, 5)
]

OUTPUT = "out/corpus.jsonl"
REJECTS = "out/corpus.rejects.jsonl"


def mid(scale: ScaleEntry) -> float:
    return (scale.native_min + scale.native_max) / 2


def native(value: float) -> int | float:
    """Write integral scores as JSON integers, the way most corpora publish them."""
    return int(value) if float(value).is_integer() else value


def expected_unified(scale: ScaleEntry, value: float) -> float:
    """The contract's affine map, written out independently of the product."""
    fraction = (value - scale.native_min) / (scale.native_max - scale.native_min)
    return fraction * 100 if scale.higher_is_better else (1 - fraction) * 100


def sha(index: int) -> str:
    return f"{index:064x}"


def run_aggregate(
    cli: Any, tmp_path: Path, corpus: str, values: list[float]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Aggregate one shard of ``corpus`` rows with these native scores (row i has sha(i + 1)).

    Returns the unified rows by ``src_sha256`` and the reject records.
    """
    shutil.copyfile(SHIPPED_PARAMS, tmp_path / "params.yaml")
    rows = [
        {"src": f"{corpus}-{index}.mp4", "src_sha256": sha(index + 1), "mos": native(value), "corpus": corpus}
        for index, value in enumerate(values)
    ]
    write_jsonl(tmp_path / "in" / f"{corpus}.jsonl", rows)

    result = cli("aggregate", f"in/{corpus}.jsonl", "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    unified = [json.loads(line) for line in (tmp_path / OUTPUT).read_bytes().splitlines()]
    rejects = [json.loads(line) for line in (tmp_path / REJECTS).read_bytes().splitlines()]
    return {row["src_sha256"]: row for row in unified}, rejects


# --------------------------------------------------------------------------- the map itself


def test_shipped_map_covers_the_spec_corpora_and_a_dmos_one() -> None:
    spec_labels = {
        "konvid-1k",
        "konvid-150k",
        "lsvq",
        "youtube-ugc",
        "waterloo-ivc-4k",
        "live-vqc",
        "chug",
        "netflix-public",
    }
    assert spec_labels <= set(PARAMS.scales)
    assert any(not scale.higher_is_better for scale in PARAMS.scales.values()), "no DMOS corpus to test"
    assert ACR_1_5, "no 1-5 corpus to test the slack on"


@pytest.mark.parametrize("scale", SCALES)
def test_min_max_mid_map_to_0_100_50(scale: ScaleEntry) -> None:
    low, high = (0.0, 100.0) if scale.higher_is_better else (100.0, 0.0)
    assert scale.to_unified(scale.native_min) == low
    assert scale.to_unified(scale.native_max) == high
    assert scale.to_unified(mid(scale)) == 50.0


@pytest.mark.parametrize("scale", SCALES)
def test_slack_admits_just_inside_unclipped_and_refuses_just_beyond(scale: ScaleEntry) -> None:
    slack = PARAMS.range_slack
    assert slack > 0
    above, below = scale.native_max + 0.8 * slack, scale.native_min - 0.8 * slack
    assert scale.contains(above, slack)
    assert scale.contains(below, slack)
    assert not scale.contains(scale.native_max + 1.2 * slack, slack)
    assert not scale.contains(scale.native_min - 1.2 * slack, slack)
    if scale.higher_is_better:
        assert scale.to_unified(above) > 100.0
        assert scale.to_unified(below) < 0.0
    else:
        assert scale.to_unified(above) < 0.0
        assert scale.to_unified(below) > 100.0


@pytest.mark.parametrize("scale", ACR_1_5)
def test_acr_slack_admits_5_04_and_refuses_5_06(scale: ScaleEntry) -> None:
    assert scale.contains(5.04, PARAMS.range_slack)
    assert scale.to_unified(5.04) == 101.0
    assert not scale.contains(5.06, PARAMS.range_slack)


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("scale", SCALES)
def test_min_max_mid_end_to_end(cli: Any, tmp_path: Path, scale: ScaleEntry) -> None:
    values = [scale.native_min, scale.native_max, mid(scale)]
    by_sha, rejects = run_aggregate(cli, tmp_path, scale.corpus, values)

    assert rejects == []
    assert set(by_sha) == {sha(1), sha(2), sha(3)}
    low, high = (0.0, 100.0) if scale.higher_is_better else (100.0, 0.0)
    for index, (value, unified) in enumerate(zip(values, [low, high, 50.0], strict=True), start=1):
        row = by_sha[sha(index)]
        assert row["mos"] == unified, (index, row)
        assert row["mos_native"] == value
        assert row["mos_native_scale"] == scale.label
        assert row["corpus_source"] == scale.corpus
        assert row["src"] == f"{scale.corpus}-{index - 1}.mp4"


@pytest.mark.parametrize("scale", SCALES)
def test_slack_end_to_end(cli: Any, tmp_path: Path, scale: ScaleEntry) -> None:
    slack = PARAMS.range_slack
    values = [
        scale.native_max + 0.8 * slack,
        scale.native_min - 0.8 * slack,
        scale.native_max + 1.2 * slack,
        scale.native_min - 1.2 * slack,
    ]
    by_sha, rejects = run_aggregate(cli, tmp_path, scale.corpus, values)

    assert set(by_sha) == {sha(1), sha(2)}
    above, below = by_sha[sha(1)], by_sha[sha(2)]
    assert above["mos"] == pytest.approx(expected_unified(scale, values[0]), abs=1e-9)
    assert below["mos"] == pytest.approx(expected_unified(scale, values[1]), abs=1e-9)
    if scale.higher_is_better:
        assert above["mos"] > 100.0, "clipped at the top"
        assert below["mos"] < 0.0, "clipped at the bottom"
    else:
        assert above["mos"] < 0.0, "clipped at the bottom (DMOS)"
        assert below["mos"] > 100.0, "clipped at the top (DMOS)"
    assert (above["mos_native"], below["mos_native"]) == (values[0], values[1])
    assert [(item["reason"], item["path"], item["line"]) for item in rejects] == [
        ("bad_scale", f"in/{scale.corpus}.jsonl", 3),
        ("bad_scale", f"in/{scale.corpus}.jsonl", 4),
    ]
    assert [item["row"]["mos"] for item in rejects] == values[2:]


@pytest.mark.parametrize("scale", ACR_1_5)
def test_acr_5_04_admitted_5_06_rejected_end_to_end(cli: Any, tmp_path: Path, scale: ScaleEntry) -> None:
    by_sha, rejects = run_aggregate(cli, tmp_path, scale.corpus, [5.04, 5.06])

    assert list(by_sha) == [sha(1)]
    assert by_sha[sha(1)]["mos"] == 101.0
    assert by_sha[sha(1)]["mos_native"] == 5.04
    [reject] = rejects
    assert (reject["reason"], reject["path"], reject["line"]) == ("bad_scale", f"in/{scale.corpus}.jsonl", 2)
    assert reject["row"]["mos"] == 5.06


# --------------------------------------------------------------------------- corpusprov scales

_FORMULA = re.compile(r"mos = (?P<slope>-?[\d.e+-]+) \* x (?P<sign>[+-]) (?P<intercept>[\d.e+-]+)")


def test_scales_command_lists_every_corpus(cli: Any, tmp_path: Path) -> None:
    shutil.copyfile(SHIPPED_PARAMS, tmp_path / "params.yaml")

    result = cli("scales")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    for corpus, scale in PARAMS.scales.items():
        [line] = [line for line in lines if line.startswith(corpus + " ")]
        assert f"{scale.native_min:g}-{scale.native_max:g}" in line, line
        assert ("DMOS" in line) is (not scale.higher_is_better), line
        assert scale.citation, f"{corpus} ships without a citation"
        assert scale.citation in line, line
        formula = _FORMULA.search(line)
        assert formula, f"no formula in: {line}"
        # The formula the table prints maps min and max to the ends of 0-100.
        slope = float(formula["slope"])
        intercept = float(formula["intercept"]) * (-1 if formula["sign"] == "-" else 1)
        low, high = (0.0, 100.0) if scale.higher_is_better else (100.0, 0.0)
        assert slope * scale.native_min + intercept == low, line
        assert slope * scale.native_max + intercept == high, line
