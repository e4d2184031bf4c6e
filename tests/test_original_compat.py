"""Drop-in parity with merge_corpora.py and aggregate_corpora.py: the same rows from the same shards.

Every expected row below is written out by hand from what the original scripts do (their
code is the reference, see the README's migration table); none is computed by corpusprov.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from corpusprov.params.stages import AggregateParams, MergeParams
from tests.conftest import REPO_ROOT, Cli, encode_row, write_jsonl

SHIPPED = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8")

#: vmaf-tune's CORPUS_ROW_KEYS, schema version 3, in its order (what merge_corpora.py requires).
VMAF_TUNE_V3_KEYS = [
    "schema_version", "run_id", "timestamp", "src", "src_sha256", "width", "height", "pix_fmt",
    "framerate", "duration_s", "encoder", "encoder_version", "preset", "crf", "extra_params",
    "encode_path", "encode_size_bytes", "bitrate_kbps", "encode_time_ms", "vmaf_score", "vmaf_model",
    "score_time_ms", "ffmpeg_version", "vmaf_binary_version", "exit_status", "clip_mode", "hdr_transfer",
    "hdr_primaries", "hdr_forced", "shot_count", "shot_avg_duration_sec", "shot_duration_std_sec",
    "adm2_mean", "vif_scale0_mean", "vif_scale1_mean", "vif_scale2_mean", "vif_scale3_mean",
    "motion2_mean", "adm2_std", "vif_scale0_std", "vif_scale1_std", "vif_scale2_std", "vif_scale3_std",
    "motion2_std", "enc_internal_qp_mean", "enc_internal_qp_std", "enc_internal_bits_mean",
    "enc_internal_bits_std", "enc_internal_mv_mean", "enc_internal_mv_std", "enc_internal_itex_mean",
    "enc_internal_ptex_mean", "enc_internal_intra_ratio", "enc_internal_skip_ratio",
]  # fmt: skip


def _params(folder: Path, *edits: tuple[str, str]) -> None:
    text = SHIPPED
    for old, new in edits:
        assert text.count(old) >= 1, old
        text = text.replace(old, new)
    (folder / "params.yaml").write_text(text, encoding="utf-8")


PASSTHROUGH = ("output_row: unified", "output_row: passthrough")
REJECT_INVALID = ("  on_invalid_row: fail   # unusable rows", "  on_invalid_row: reject # unusable rows")


def _aggregate(cli: Cli, *inputs: str, code: int = 0) -> Any:
    result = cli("aggregate", *inputs, "--output", "u.jsonl")
    assert result.exit_code == code, result.output
    return result


def _rows(folder: Path, name: str = "u.jsonl") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines()]


def _manifest(folder: Path, name: str = "u.jsonl") -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / f"{name}.manifest.json").read_text(encoding="utf-8"))
    return document


def _rejects(folder: Path, name: str = "u.rejects.jsonl") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines()]


def mos(src: str, score: Any, corpus: str, std: Any = ..., sha: str | None = None, **more: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "src": src,
        "src_sha256": f"sha-{src}" if sha is None else sha,
        "mos": score,
        "corpus": corpus,
    }
    if std is not ...:
        row["mos_std_dev"] = std
    row.update(more)
    return row


# ----------------------------------------------------------------- 1. merge's required keys


def test_merge_requires_the_54_keys_of_the_vmaf_tune_contract() -> None:
    assert list(MergeParams().required_keys) == VMAF_TUNE_V3_KEYS
    assert "  required_keys:\n" + "".join(f"  - {key}\n" for key in VMAF_TUNE_V3_KEYS) in SHIPPED


def test_merge_refuses_a_row_without_a_feature_column(cli: Cli, tmp_path: Path) -> None:
    row = encode_row()
    del row["adm2_mean"]
    write_jsonl(tmp_path / "a.jsonl", [encode_row(crf=20), row])
    result = cli("merge", "a.jsonl", "--output", "m.jsonl")
    assert result.exit_code == 1
    assert result.stderr.startswith("corpusprov: error: a.jsonl:2: missing required key 'adm2_mean'")
    assert not (tmp_path / "m.jsonl").exists()


def test_merge_counts_unique_sources_as_the_original(cli: Cli, tmp_path: Path) -> None:
    """Distinct non-empty string src_sha256 among rows written (a duplicate's source is not new)."""
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            encode_row(src_sha256="s1", crf=20),
            encode_row(src_sha256="s1", crf=21),
            encode_row(src_sha256="s2", crf=20),
            encode_row(src_sha256="s2", crf=20.0),  # a duplicate
            encode_row(src_sha256="", crf=20),
            encode_row(src_sha256=7, crf=20),
        ],
    )
    result = cli("merge", "a.jsonl", "--output", "m.jsonl", "--metrics-out", "metrics.json")
    assert result.exit_code == 0, result.output
    assert _manifest(tmp_path, "m.jsonl")["counters"]["unique_sources"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["grid"]["sources"] == 2


def test_sample_encode_rows_carry_every_contract_key(tmp_path: Path) -> None:
    from corpusprov.sample import generate_samples

    result = generate_samples(tmp_path, seed=1, rows=30)
    for file in result.files:
        if file.kind == "encode":
            for line in file.path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                assert [key for key in VMAF_TUNE_V3_KEYS if key not in row] == []


# ----------------------------------------------------------------- 2. the winner rule


@pytest.mark.parametrize(
    ("rows", "kept", "cross", "same"),
    [
        # the case: lsvq 0.5, konvid-150k 0.3, lsvq 0.1 -> lsvq 0.1 (compared with the current winner)
        ([("lsvq", 0.5), ("konvid-150k", 0.3), ("lsvq", 0.1)], ("lsvq", 0.1), 2, 0),
        # konvid-1k without std, lsvq 0 (unknown), lsvq 0.48 -> lsvq 0.48
        ([("konvid-1k", ...), ("lsvq", 0), ("lsvq", 0.48)], ("lsvq", 0.48), 2, 0),
        # the winner's own corpus is dropped whatever its std-dev
        ([("lsvq", 0.5), ("lsvq", 0.1)], ("lsvq", 0.5), 0, 1),
        # ties keep the current winner
        ([("konvid-1k", 0.4), ("lsvq", 0.4)], ("konvid-1k", 0.4), 1, 0),
        # std-devs compare as written: 0.4 on 1-5 beats 8 on 0-100
        ([("waterloo-ivc-4k", 8.0), ("lsvq", 0.4)], ("lsvq", 0.4), 1, 0),
        # null, negative, NaN std-devs are unknown and lose to any known one
        ([("konvid-1k", None), ("lsvq", 0.9)], ("lsvq", 0.9), 1, 0),
        ([("konvid-1k", -1.0), ("lsvq", 0.9)], ("lsvq", 0.9), 1, 0),
        ([("konvid-1k", math.nan), ("lsvq", 0.9)], ("lsvq", 0.9), 1, 0),
    ],
)
def test_winner_rule_of_the_original(
    cli: Cli, tmp_path: Path, rows: list[tuple[str, Any]], kept: tuple[str, float], cross: int, same: int
) -> None:
    _params(tmp_path)
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            mos(f"clip{index}", 50.0 if corpus == "waterloo-ivc-4k" else 3.0, corpus, std=std, sha="same")
            for index, (corpus, std) in enumerate(rows)
        ],
    )
    _aggregate(cli, "a.jsonl")
    [row] = _rows(tmp_path)
    assert (row["corpus_source"], row["mos_std_dev"]) == kept
    counters = _manifest(tmp_path)["counters"]
    assert (counters["cross_corpus_duplicates"], counters["same_corpus_duplicates"]) == (cross, same)
    assert AggregateParams(scales={}).std_dev_units == "native"


def test_unified_std_dev_units_remain_an_option(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path, ("std_dev_units: native", "std_dev_units: unified"))
    write_jsonl(
        tmp_path / "a.jsonl",
        [mos("x", 50.0, "waterloo-ivc-4k", std=8.0, sha="s"), mos("y", 3.0, "lsvq", std=0.4, sha="s")],
    )
    _aggregate(cli, "a.jsonl")
    assert [row["src"] for row in _rows(tmp_path)] == ["x"]  # 0.4 on 1-5 is 10 on 0-100 > 8
    assert _manifest(tmp_path)["policy"]["dedup"]["std_dev_units"] == "unified"


# ----------------------------------------------------------------- 3. keys and labels


def test_rows_without_a_string_sha_are_keyed_by_src_and_label(cli: Cli, tmp_path: Path) -> None:
    """Null and empty shas are no identity: such rows only meet rows of the same src and label."""
    _params(tmp_path)
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            mos("x", 3.0, "lsvq", sha="", std=0.5),
            mos("x", 4.0, "lsvq", sha=None, std=0.1),  # same (x, lsvq)
            {"src": "x", "src_sha256": None, "mos": 2.0, "corpus": "konvid-1k"},  # (x, konvid-1k)
            mos("y", 3.0, "lsvq", sha=""),  # (y, lsvq)
        ],
    )
    (tmp_path / "a.jsonl").write_text(
        (tmp_path / "a.jsonl").read_text(encoding="utf-8").replace('"src_sha256": "sha-x"', '"src_sha256": null'),
        encoding="utf-8",
    )
    _aggregate(cli, "a.jsonl")
    assert [(row["src"], row["corpus_source"], row["mos_native"]) for row in _rows(tmp_path)] == [
        ("x", "konvid-1k", 2.0),
        ("x", "lsvq", 3.0),
        ("y", "lsvq", 3.0),
    ]
    assert _manifest(tmp_path)["counters"]["same_corpus_duplicates"] == 1


def test_a_non_string_sha_is_no_identity_in_passthrough_rows(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path, PASSTHROUGH)
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            mos("x", 3.0, "lsvq", sha=12, std=0.5),  # type: ignore[arg-type]
            mos("y", 3.0, "konvid-1k", sha=12, std=0.1),  # type: ignore[arg-type]
        ],
    )
    _aggregate(cli, "a.jsonl")
    assert [row["src"] for row in _rows(tmp_path)] == ["y", "x"]  # two keys, no duplicate
    assert _manifest(tmp_path)["counters"]["cross_corpus_duplicates"] == 0


@pytest.mark.parametrize(
    ("corpus_source", "label"),
    [
        ("youtube-ugc", "youtube-ugc"),  # a non-empty corpus_source wins over corpus
        ("", "konvid-1k"),  # empty falls back to corpus
        (None, "konvid-1k"),  # so does null
    ],
)
def test_label_is_corpus_source_when_a_non_empty_string_else_corpus(
    cli: Cli, tmp_path: Path, corpus_source: Any, label: str
) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [mos("x", 3.0, "konvid-1k", corpus_source=corpus_source)])
    _aggregate(cli, "a.jsonl")
    [row] = _rows(tmp_path)
    assert (row["corpus"], row["corpus_source"]) == ("konvid-1k", label)


def test_override_beats_the_row_labels(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path, ("  overrides: {}\n", "  overrides:\n    a.jsonl: lsvq\n"))
    write_jsonl(tmp_path / "a.jsonl", [mos("x", 3.0, "konvid-1k", corpus_source="youtube-ugc")])
    _aggregate(cli, "a.jsonl")
    [row] = _rows(tmp_path)
    assert (row["corpus"], row["corpus_source"], row["mos_native_scale"]) == ("konvid-1k", "lsvq", "1-5-acr")


# ----------------------------------------------------------------- 4. arithmetic


@pytest.mark.parametrize(
    ("score", "corpus", "written"),
    [
        (57.99, "waterloo-ivc-4k", b'"mos":57.99,'),  # identity scales are exact
        (1.001, "lsvq", b'"mos":0.02499999999999858,'),  # 25.0 * x - 25.0, the original's bits
        (3.7, "konvid-1k", b'"mos":67.5,'),
        (4.13, "youtube-ugc", b'"mos":78.25,'),
        (5.04, "lsvq", b'"mos":101.0,'),  # within the slack: never clipped
        (25.0, "live-vqa", b'"mos":75.0,'),  # DMOS: -1.0 * x + 100.0
        (0, "netflix-public", b'"mos":0.0,'),
    ],
)
def test_unified_mos_has_the_originals_bits(
    cli: Cli, tmp_path: Path, score: float, corpus: str, written: bytes
) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [mos("x", score, corpus)])
    _aggregate(cli, "a.jsonl")
    assert written in (tmp_path / "u.jsonl").read_bytes()


def test_mos_native_is_a_float_and_the_manifest_names_slope_and_intercept(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [mos("x", 3, "lsvq"), mos("y", 40, "live-vqa")])
    _aggregate(cli, "a.jsonl")
    assert [(row["mos_native"], row["mos"]) for row in _rows(tmp_path)] == [(40.0, 60.0), (3.0, 50.0)]
    assert b'"mos_native":3.0,' in (tmp_path / "u.jsonl").read_bytes()
    conversions = {item["corpus"]: item for item in _manifest(tmp_path)["scale_conversions"]}
    assert (conversions["lsvq"]["slope"], conversions["lsvq"]["intercept"]) == (25.0, -25.0)
    assert conversions["lsvq"]["formula"] == "mos = 25 * x - 25"
    assert (conversions["live-vqa"]["slope"], conversions["live-vqa"]["intercept"]) == (-1.0, 100.0)
    assert conversions["live-vqa"]["formula"] == "mos = -1 * x + 100"


# ----------------------------------------------------------------- 5. labels


def test_the_originals_six_corpora_carry_its_labels() -> None:
    from corpusprov.params.load import load_params
    from corpusprov.params.scales import aggregate_params

    scales = aggregate_params(load_params(REPO_ROOT / "params.yaml", "params.yaml", required=True)).scales
    assert {
        corpus: scales[corpus].label
        for corpus in ("konvid-1k", "konvid-150k", "lsvq", "youtube-ugc", "waterloo-ivc-4k", "netflix-public")
    } == {
        "konvid-1k": "1-5-acr",
        "konvid-150k": "1-5-acr",
        "lsvq": "1-5-acr",
        "youtube-ugc": "1-5-acr",
        "waterloo-ivc-4k": "0-100-dcr",
        "netflix-public": "vmaf",
    }
    assert (scales["live-vqc"].label, scales["chug"].label, scales["live-vqa"].label) == (
        "0-100-continuous",
        "1-5-acr",
        "0-100-dmos",
    )


# ----------------------------------------------------------------- 6. the unified row


def test_a_row_with_only_the_required_keys_gets_the_13_defaults(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [{"src": "a.mp4", "src_sha256": "s", "mos": 4.2, "corpus": "konvid-1k"}])
    _aggregate(cli, "a.jsonl")
    assert _rows(tmp_path) == [
        {
            "src": "a.mp4",
            "src_sha256": "s",
            "width": 0,
            "height": 0,
            "framerate": 0.0,
            "duration_s": 0.0,
            "pix_fmt": "",
            "encoder_upstream": "",
            "mos": 80.0,
            "mos_native": 4.2,
            "mos_native_scale": "1-5-acr",
            "mos_std_dev": 0.0,
            "n_ratings": 0,
            "corpus": "konvid-1k",
            "corpus_source": "konvid-1k",
            "corpus_version": "",
            "ingested_at_utc": "",
        }
    ]
    assert b'"framerate":0.0,' in (tmp_path / "u.jsonl").read_bytes()


def test_full_row_converts_types_and_drops_other_fields(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            mos(
                "a.mp4",
                3.5,
                "lsvq",
                std=0.25,
                width=1920.0,
                height=1080,
                framerate=30,
                duration_s=10.5,
                pix_fmt="yuv420p",
                encoder_upstream="h264",
                n_ratings=31.0,
                corpus_version="2021",
                ingested_at_utc="2026-01-02T03:04:05Z",
                src_size_bytes=123,
                aggregated_at_utc="2026-01-01T00:00:00Z",
                pix_fmt_extra=None,
            )
        ],
    )
    _aggregate(cli, "a.jsonl")
    assert _rows(tmp_path) == [
        {
            "src": "a.mp4",
            "src_sha256": "sha-a.mp4",
            "width": 1920,
            "height": 1080,
            "framerate": 30.0,
            "duration_s": 10.5,
            "pix_fmt": "yuv420p",
            "encoder_upstream": "h264",
            "mos": 62.5,
            "mos_native": 3.5,
            "mos_native_scale": "1-5-acr",
            "mos_std_dev": 0.25,
            "n_ratings": 31,
            "corpus": "lsvq",
            "corpus_source": "lsvq",
            "corpus_version": "2021",
            "ingested_at_utc": "2026-01-02T03:04:05Z",
        }
    ]
    data = (tmp_path / "u.jsonl").read_bytes()
    assert b'"width":1920}' in data and b'"framerate":30.0,' in data and b"aggregated_at_utc" not in data
    assert _manifest(tmp_path)["counters"]["fields_dropped_rows"] == 1


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("width", "1920", "width '1920' is not an integer"),
        ("height", math.nan, "height nan is not an integer"),
        ("n_ratings", 12.5, "n_ratings 12.5 is not an integer"),
        ("width", True, "width True is not an integer"),
        ("framerate", "30", "framerate '30' is not a number"),
        ("duration_s", [10], "duration_s [10] is not a number"),
        ("pix_fmt", 420, "pix_fmt 420 is not a string"),
        ("src", 17, "src 17 is not a string"),
        ("mos_std_dev", "wide", "mos_std_dev 'wide' is not a number"),
    ],
)
def test_a_field_that_cannot_take_its_type_is_rejected_naming_it(
    cli: Cli, tmp_path: Path, field: str, value: Any, shown: str
) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [mos("ok", 3.0, "lsvq"), {**mos("bad", 3.0, "lsvq"), field: value}])
    _aggregate(cli, "a.jsonl")
    assert [row["src"] for row in _rows(tmp_path)] == ["ok"]
    [reject] = _rejects(tmp_path)
    assert (reject["reason"], reject["path"], reject["line"], reject["detail"]) == ("bad_field", "a.jsonl", 2, shown)
    assert _manifest(tmp_path)["counters"]["rejected_bad_field"] == 1


def test_passthrough_keeps_every_input_field(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path, PASSTHROUGH)
    write_jsonl(tmp_path / "a.jsonl", [mos("a", 2, "lsvq", width="wide", note="kept")])
    _aggregate(cli, "a.jsonl")
    assert _rows(tmp_path) == [
        {
            "src": "a",
            "src_sha256": "sha-a",
            "mos": 25.0,
            "mos_native": 2.0,
            "mos_native_scale": "1-5-acr",
            "corpus": "lsvq",
            "corpus_source": "lsvq",
            "width": "wide",
            "note": "kept",
        }
    ]


# ----------------------------------------------------------------- 7. numbers as strings


def test_numeric_strings_are_numbers_and_are_counted(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(
        tmp_path / "a.jsonl",
        [mos("a", "3.5", "lsvq", std="0.3", sha="s"), mos("b", 3.0, "konvid-1k", std=0.4, sha="s")],
    )
    _aggregate(cli, "a.jsonl")
    [row] = _rows(tmp_path)
    assert (row["src"], row["mos"], row["mos_native"], row["mos_std_dev"]) == ("a", 62.5, 3.5, 0.3)
    assert _manifest(tmp_path)["counters"]["numbers_from_strings"] == 2


@pytest.mark.parametrize("score", [True, None, "high", "", [3]])
def test_booleans_null_and_other_strings_stay_invalid(cli: Cli, tmp_path: Path, score: Any) -> None:
    _params(tmp_path, REJECT_INVALID)
    write_jsonl(tmp_path / "a.jsonl", [mos("a", score, "lsvq"), mos("b", 3.0, "lsvq")])
    _aggregate(cli, "a.jsonl")
    assert [row["src"] for row in _rows(tmp_path)] == ["b"]
    assert [reject["reason"] for reject in _rejects(tmp_path)] == ["invalid_mos"]


def test_an_invalid_mos_fails_the_run_by_default(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [mos("a", "high", "lsvq")])
    result = _aggregate(cli, "a.jsonl", code=1)
    assert result.stderr.startswith("corpusprov: error: a.jsonl:1: mos 'high' is not a number")


# ----------------------------------------------------------------- 8. shard quirks


def test_crlf_blank_lines_and_empty_files_are_read_and_counted(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    first = json.dumps(mos("a", 3.0, "lsvq")).encode()
    second = json.dumps(mos("b", 4.0, "lsvq")).encode()
    (tmp_path / "windows.jsonl").write_bytes(first + b"\r\n\r\n" + second + b"\r\n")
    (tmp_path / "blank.jsonl").write_bytes(b"\n" + json.dumps(mos("c", 2.0, "lsvq")).encode() + b"\n  \n")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    result = _aggregate(cli, "windows.jsonl", "blank.jsonl", "empty.jsonl")
    assert [row["src"] for row in _rows(tmp_path)] == ["a", "b", "c"]
    assert (
        "3 rows in from 3 input(s) -> 3 rows out (0 duplicates, 0 rejected; 3 blank lines skipped, "
        "1 CRLF shard, 1 empty input)" in result.stdout
    )
    manifest = _manifest(tmp_path)
    assert manifest["counters"]["blank_lines_skipped"] == 3
    assert [(item["path"], item["bytes"] == 0, item["counters"]["crlf_lines"]) for item in manifest["inputs"]] == [
        ("windows.jsonl", False, 3),
        ("blank.jsonl", False, 0),
        ("empty.jsonl", True, 0),
    ]


def test_merge_reads_a_windows_hosts_shard(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "w.jsonl").write_bytes(
        b"".join(json.dumps(encode_row(crf=crf), sort_keys=True).encode() + b"\r\n" for crf in (20, 21, 20))
    )
    result = cli("merge", "w.jsonl", "--output", "m.jsonl")
    assert result.exit_code == 0, result.output
    assert "(1 duplicates, 0 rejected; 1 CRLF shard)" in result.stdout
    assert b"\r" not in (tmp_path / "m.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("setting", "content", "message"),
    [
        ("crlf: reject", b'{"a": 1}\r\n', "line ends with CRLF"),
        ("blank_lines: reject", b"\n", "blank line"),
        ("empty_file: reject", b"", "file is empty"),
    ],
)
def test_strict_reader_settings_stay_available(
    cli: Cli, tmp_path: Path, setting: str, content: bytes, message: str
) -> None:
    name = setting.split(":")[0]
    default = {"crlf": "accept", "blank_lines": "skip", "empty_file": "accept"}[name]
    _params(tmp_path, (f"    {name}: {default}\n", f"    {setting}\n"))
    (tmp_path / "a.jsonl").write_bytes(content)
    result = _aggregate(cli, "a.jsonl", code=1)
    assert message in result.stderr


def test_a_bom_stays_refused_by_default(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(mos("a", 3.0, "lsvq")).encode() + b"\n")
    result = _aggregate(cli, "a.jsonl", code=1)
    assert "byte order mark" in result.stderr


def test_a_missing_input_fails_unless_told_to_skip_it(cli: Cli, tmp_path: Path) -> None:
    _params(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [mos("a", 3.0, "lsvq")])
    result = _aggregate(cli, "a.jsonl", "gone.jsonl", code=2)
    assert result.stderr.startswith("corpusprov: error: gone.jsonl: input does not exist")

    _params(tmp_path, ("on_missing_input: fail", "on_missing_input: skip"))
    result = _aggregate(cli, "a.jsonl", "gone.jsonl")
    assert "1 missing input skipped (gone.jsonl)" in result.stdout
    manifest = _manifest(tmp_path)
    assert manifest["skipped_inputs"] == ["gone.jsonl"]
    assert [item["path"] for item in manifest["inputs"]] == ["a.jsonl"]
    # Every input missing: nothing is written (the original refuses an empty corpus too).
    result = _aggregate(cli, "gone.jsonl", "also-gone.jsonl", code=2)
    assert "none of the 2 input(s) exists" in result.stderr


def test_trace_explains_the_current_winner_rule(cli: Cli, tmp_path: Path) -> None:
    """trace drives the stage's own Resolver, under the rule the manifest records."""
    _params(tmp_path)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  aggregate:\n    cmd: corpusprov aggregate m.jsonl --output u.jsonl\n"
        "    deps: [m.jsonl]\n    params: [aggregate]\n"
        "    outs: [u.jsonl, u.rejects.jsonl, u.jsonl.manifest.json]\n",
        encoding="utf-8",
    )
    write_jsonl(
        tmp_path / "m.jsonl",
        [
            mos("a", 3.0, "lsvq", std=0.5, sha="k"),
            mos("b", 3.0, "konvid-150k", std=0.3, sha="k"),
            mos("c", 3.0, "lsvq", std=0.1, sha="k"),
            mos("d", 3.0, "lsvq", std=0.05, sha="k"),
        ],
    )
    _aggregate(cli, "m.jsonl")
    result = cli("trace", "aggregate", "src_sha256=k")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.lstrip(" *").startswith("m.jsonl:")]
    assert lines == [
        "   m.jsonl:1  cross-corpus duplicate: lost to m.jsonl:2 (std-dev 0.3 < 0.5)",
        "   m.jsonl:2  cross-corpus duplicate: lost to m.jsonl:3 (std-dev 0.1 < 0.3)",
        " * m.jsonl:3  winner",
        "   m.jsonl:4  same-corpus duplicate of m.jsonl:3 (same corpus lsvq as the current winner: dropped)",
    ]
    assert "compared in native (as written) units" in result.stdout
