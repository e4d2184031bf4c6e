"""Tests for the deterministic synthetic sample-corpus generator."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from pathlib import Path

import pytest

from corpusprov.errors import UsageError
from corpusprov.params.defaults import (
    ENCODE_GRID_REQUIRED_KEYS,
    MERGE_DEDUP_KEY,
    MOS_OPTIONAL_KEYS,
    MOS_REQUIRED_KEYS,
)
from corpusprov.sample import (
    ENCODE_HOSTS,
    MIN_MOS_ROWS,
    MOS_CORPORA,
    generate_samples,
    iter_encode_lines,
    iter_encode_rows,
    iter_mos_lines,
    iter_mos_rows,
)

Row = dict[str, object]

ACR_CORPORA = ("konvid-1k", "lsvq", "youtube-ugc")
STRING_PRESET_ENCODERS = {"libx264", "libx265"}
INT_PRESET_ENCODERS = {"libsvtav1", "libaom-av1", "libvpx-vp9"}


def read_rows(path: Path) -> list[Row]:
    rows: list[Row] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def all_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.jsonl"))}


def encode_shards(folder: Path) -> dict[str, list[Row]]:
    return {host: read_rows(folder / "encode" / f"{host}.jsonl") for host in ENCODE_HOSTS}


def mos_corpora(folder: Path) -> dict[str, list[Row]]:
    return {label: read_rows(folder / "mos" / f"{label}.jsonl") for label in MOS_CORPORA}


def natural_key(row: Row) -> tuple[object, ...]:
    # Numbers compare by value: 23 and 23.0 are one key, as the merge stage says.
    return tuple(
        float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        for value in (row[field] for field in MERGE_DEDUP_KEY)
    )


def is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


# Every quirk must exist in the smallest sample as well as in the default-sized one.
@pytest.fixture(scope="module", params=[10, 600], ids=["rows10", "rows600"])
def sample_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"sample{request.param}")
    generate_samples(out, seed=7, rows=request.param)
    return out


# ------------------------------------------------------------------ layout and determinism


def test_layout_and_result_describe_the_files(tmp_path: Path) -> None:
    result = generate_samples(tmp_path, seed=3, rows=90)

    assert [(file.path.relative_to(tmp_path).as_posix(), file.kind) for file in result.files] == [
        ("encode/grid-host-a.jsonl", "encode"),
        ("encode/grid-host-b.jsonl", "encode"),
        ("encode/grid-host-c.jsonl", "encode"),
        ("mos/konvid-1k.jsonl", "mos"),
        ("mos/lsvq.jsonl", "mos"),
        ("mos/youtube-ugc.jsonl", "mos"),
        ("mos/waterloo-ivc-4k.jsonl", "mos"),
        ("mos/live-vqa.jsonl", "mos"),
    ]
    for file in result.files:
        data = file.path.read_bytes()
        assert data.endswith(b"\n")
        # The Windows host's shard ends every line in CRLF (vmaf-tune writes os.linesep).
        windows = file.path.name == "grid-host-c.jsonl"
        assert data.count(b"\r\n") == (file.rows if windows else 0)
        assert data.count(b"\r") == data.count(b"\r\n")
        assert data.count(b"\n") == file.rows
    # Atomic writes leave nothing else behind.
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(file.path.name for file in result.files)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    generate_samples(tmp_path / "one", seed=11, rows=300)
    generate_samples(tmp_path / "two", seed=11, rows=300)

    first, second = all_bytes(tmp_path / "one"), all_bytes(tmp_path / "two")
    assert len(first) == 8
    assert first == second


def test_different_seed_gives_different_bytes(tmp_path: Path) -> None:
    generate_samples(tmp_path / "one", seed=11, rows=300)
    generate_samples(tmp_path / "two", seed=12, rows=300)

    first, second = all_bytes(tmp_path / "one"), all_bytes(tmp_path / "two")
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_encode_shards_do_not_depend_on_mos_rows(tmp_path: Path) -> None:
    generate_samples(tmp_path / "one", seed=5, rows=100, mos_rows=20)
    generate_samples(tmp_path / "two", seed=5, rows=100, mos_rows=45)

    assert all_bytes(tmp_path / "one" / "encode") == all_bytes(tmp_path / "two" / "encode")


@pytest.mark.parametrize(("rows", "mos_rows", "expected_mos"), [
    (10, None, MIN_MOS_ROWS),
    (11, None, MIN_MOS_ROWS),
    (12, None, MIN_MOS_ROWS),
    (601, None, 401),
    (30, 57, 57),
])  # fmt: skip
def test_row_counts_are_honoured(tmp_path: Path, rows: int, mos_rows: int | None, expected_mos: int) -> None:
    result = generate_samples(tmp_path, seed=1, rows=rows, mos_rows=mos_rows)

    encode_lines = sum(len(read_rows(f.path)) for f in result.files if f.kind == "encode")
    mos_lines = sum(len(read_rows(f.path)) for f in result.files if f.kind == "mos")
    assert encode_lines == rows
    assert mos_lines == expected_mos
    assert sum(f.rows for f in result.files) == rows + expected_mos


@pytest.mark.parametrize("kwargs", [
    {"rows": 9},
    {"rows": 0},
    {"rows": -5},
    {"rows": 100, "seed": -1},
    {"rows": 100, "mos_rows": MIN_MOS_ROWS - 1},
    {"rows": 100, "extra_width": -1},
])  # fmt: skip
def test_bad_arguments_raise_usage_error_and_write_nothing(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        generate_samples(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_streaming_helpers_validate_eagerly() -> None:
    with pytest.raises(UsageError, match="at least 10"):
        iter_encode_rows(random.Random(0), 9)
    with pytest.raises(UsageError, match="at least 20"):
        iter_mos_rows(random.Random(0), 19)


# ------------------------------------------------------------------ encode grid


def test_every_encode_row_parses_and_carries_the_required_keys(sample_dir: Path) -> None:
    for host, rows in encode_shards(sample_dir).items():
        assert rows
        for row in rows:
            assert isinstance(row, dict)
            assert set(ENCODE_GRID_REQUIRED_KEYS) <= row.keys()
            assert len(row) >= 55
            assert row["host"] == host
            assert row["exit_status"] == 0
            assert isinstance(row["src_sha256"], str)
            assert len(row["src_sha256"]) == 64
            assert int(row["src_sha256"], 16) >= 0
            vmaf = row["vmaf_score"]
            assert isinstance(vmaf, float)
            assert 0.0 <= vmaf <= 100.0


def test_lines_are_plain_json_dumps_output(sample_dir: Path) -> None:
    for path in sorted(sample_dir.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            # Upstream style: default separators, insertion order, bare NaN, raw UTF-8.
            assert line == json.dumps(row, ensure_ascii=False)
    first = (sample_dir / "encode" / "grid-host-a.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith('{"schema_version": 3, "run_id": ')
    assert list(json.loads(first)) != sorted(json.loads(first))


def test_cross_shard_duplicates_include_int_and_float_crf(sample_dir: Path) -> None:
    seen: dict[tuple[object, ...], list[tuple[str, object]]] = defaultdict(list)
    for host, rows in encode_shards(sample_dir).items():
        for row in rows:
            seen[natural_key(row)].append((host, row["crf"]))

    cross_shard = [hits for hits in seen.values() if len({host for host, _ in hits}) > 1]
    assert cross_shard
    mixed = [
        hits
        for hits in cross_shard
        if {type(crf) for _, crf in hits} == {int, float} and len({crf for _, crf in hits}) == 1
    ]
    assert mixed, "expected a key written as 23 in one shard and 23.0 in another"
    within_shard = [hits for hits in seen.values() if len(hits) > len({host for host, _ in hits})]
    assert within_shard


def test_duplicate_share_in_later_shards_is_about_ten_percent(tmp_path: Path) -> None:
    generate_samples(tmp_path, seed=2, rows=3000)
    shards = encode_shards(tmp_path)
    earlier = {natural_key(row) for row in shards["grid-host-a"]}
    repeats = sum(natural_key(row) in earlier for row in shards["grid-host-b"])
    assert 0.07 * len(shards["grid-host-b"]) <= repeats <= 0.13 * len(shards["grid-host-b"])


def test_preset_is_a_string_for_x26x_and_an_int_for_the_others(sample_dir: Path) -> None:
    types_seen: set[type] = set()
    for rows in encode_shards(sample_dir).values():
        for row in rows:
            preset, encoder = row["preset"], row["encoder"]
            assert encoder in STRING_PRESET_ENCODERS | INT_PRESET_ENCODERS
            expected = str if encoder in STRING_PRESET_ENCODERS else int
            assert type(preset) is expected
            types_seen.add(type(preset))
    assert types_seen == {int, str}


def failed_probes(folder: Path) -> list[tuple[str, int, Row]]:
    """Every encode row with a NaN in a natural-key field, as (host, 1-based line, row)."""
    return [
        (host, line, row)
        for host, rows in encode_shards(folder).items()
        for line, row in enumerate(rows, start=1)
        if any(is_nan(row[field]) for field in MERGE_DEDUP_KEY)
    ]


def test_nan_tokens_are_bare_and_only_in_feature_columns_but_one_crf(sample_dir: Path) -> None:
    raw = b"".join(path.read_bytes() for path in sorted((sample_dir / "encode").glob("*.jsonl")))
    assert b": NaN" in raw
    assert b'"NaN"' not in raw
    assert raw.count(b'"crf": NaN') == 1

    [(probe_host, probe_line, _)] = failed_probes(sample_dir)
    nan_columns: set[str] = set()
    for host, rows in encode_shards(sample_dir).items():
        for line, row in enumerate(rows, start=1):
            columns = {key for key, value in row.items() if is_nan(value)}
            if (host, line) == (probe_host, probe_line):
                assert columns == {"crf"}  # the deliberate failed probe, NaN nowhere else
                continue
            nan_columns |= columns
    assert nan_columns
    assert nan_columns <= {"cambi", "ciede2000"}
    assert not nan_columns & {*MERGE_DEDUP_KEY, "vmaf_score"}


@pytest.mark.parametrize(("seed", "rows"), [(7, 10), (1, 11), (0, 12), (0, 600), (7, 1234), (2, 3000)])
def test_exactly_one_failed_probe_with_nan_crf_in_host_c(tmp_path: Path, seed: int, rows: int) -> None:
    result = generate_samples(tmp_path, seed=seed, rows=rows)

    [(host, line, probe)] = failed_probes(tmp_path)
    assert host == "grid-host-c"
    shard = (tmp_path / "encode" / "grid-host-c.jsonl").read_bytes().splitlines()
    assert b'"crf": NaN' in shard[line - 1]
    assert sum(b'"crf": NaN' in raw for raw in shard) == 1
    # Otherwise a normal row: every required key, finite numbers, a real cell's other key fields.
    assert set(ENCODE_GRID_REQUIRED_KEYS) <= probe.keys()
    assert [key for key, value in probe.items() if is_nan(value)] == ["crf"]
    assert probe["host"] == "grid-host-c"
    assert probe["exit_status"] == 0
    vmaf = probe["vmaf_score"]
    assert isinstance(vmaf, float)
    assert 0.0 <= vmaf <= 100.0
    # A re-probe of a cell an earlier host measured.
    cell = tuple(probe[field] for field in MERGE_DEDUP_KEY if field != "crf")
    shards = encode_shards(tmp_path)
    assert any(
        tuple(row[field] for field in MERGE_DEDUP_KEY if field != "crf") == cell
        for earlier in ("grid-host-a", "grid-host-b")
        for row in shards[earlier]
    )
    # It replaces a row rather than adding one.
    assert sum(file.rows for file in result.files if file.kind == "encode") == rows


def test_non_ascii_is_written_raw(sample_dir: Path) -> None:
    for folder in ("encode", "mos"):
        raw = b"".join(path.read_bytes() for path in sorted((sample_dir / folder).glob("*.jsonl")))
        assert b"\\u" not in raw
        assert any(byte >= 0x80 for byte in raw)
        raw.decode("utf-8")  # strict: valid UTF-8
    names = {row["src"] for rows in encode_shards(sample_dir).values() for row in rows}
    assert any(isinstance(name, str) and not name.isascii() for name in names)


def test_same_rng_gives_same_rows_as_dicts_and_lines() -> None:
    rows = list(iter_encode_rows(random.Random(42), 200, extra_width=300))
    lines = list(iter_encode_lines(random.Random(42), 200, extra_width=300))
    assert [json.dumps(row, ensure_ascii=False) for row in rows] == lines

    mos_rows = list(iter_mos_rows(random.Random(42), 100, extra_width=300))
    mos_lines = list(iter_mos_lines(random.Random(42), 100, extra_width=300))
    assert [json.dumps(row, ensure_ascii=False) for row in mos_rows] == mos_lines


@pytest.mark.parametrize("extra_width", [16, 100, 500, 3000])
def test_extra_width_widens_each_row_by_that_many_bytes(extra_width: int) -> None:
    plain = list(iter_encode_lines(random.Random(9), 30))
    wide = list(iter_encode_lines(random.Random(9), 30, extra_width=extra_width))
    assert [len(w.encode()) - len(p.encode()) for p, w in zip(plain, wide, strict=True)] == [extra_width] * 30

    plain = list(iter_mos_lines(random.Random(9), 30))
    wide = list(iter_mos_lines(random.Random(9), 30, extra_width=extra_width))
    assert [len(w.encode()) - len(p.encode()) for p, w in zip(plain, wide, strict=True)] == [extra_width] * 30

    plain_row = next(iter_encode_rows(random.Random(9), 30))
    wide_row = next(iter_encode_rows(random.Random(9), 30, extra_width=extra_width))
    padding = list(wide_row)[len(plain_row) :]
    assert list(wide_row)[: len(plain_row)] == list(plain_row)
    assert padding
    assert all(key.startswith("x_pad_") for key in padding)


def test_generate_samples_passes_extra_width_through(tmp_path: Path) -> None:
    narrow = generate_samples(tmp_path / "narrow", seed=4, rows=30)
    wide = generate_samples(tmp_path / "wide", seed=4, rows=30, extra_width=1000)
    for small, big in zip(narrow.files, wide.files, strict=True):
        grown = big.path.stat().st_size - small.path.stat().st_size
        assert grown == 1000 * small.rows


# ------------------------------------------------------------------ MOS corpora


def test_mos_rows_carry_required_and_known_optional_keys(sample_dir: Path) -> None:
    allowed = set(MOS_REQUIRED_KEYS) | set(MOS_OPTIONAL_KEYS)
    std_devs: list[object] = []
    for rows in mos_corpora(sample_dir).values():
        assert rows
        for row in rows:
            assert set(MOS_REQUIRED_KEYS) <= row.keys() <= allowed
            std_devs.append(row.get("mos_std_dev"))
    positive = [value for value in std_devs if isinstance(value, float) and value > 0]
    assert len(positive) > len(std_devs) / 2


def test_mos_std_dev_is_sometimes_missing_or_zero(tmp_path: Path) -> None:
    generate_samples(tmp_path, seed=8, rows=600)
    std_devs = [row.get("mos_std_dev") for rows in mos_corpora(tmp_path).values() for row in rows]
    assert None in std_devs
    assert 0.0 in std_devs


def test_mos_cross_corpus_and_same_corpus_duplicates(sample_dir: Path) -> None:
    files_by_sha: dict[object, list[str]] = defaultdict(list)
    for label, rows in mos_corpora(sample_dir).items():
        for row in rows:
            files_by_sha[row["src_sha256"]].append(label)

    cross = [files for files in files_by_sha.values() if len(set(files)) > 1]
    same = [files for files in files_by_sha.values() if len(files) > len(set(files))]
    assert cross
    assert same


def test_mos_cross_corpus_share_is_about_five_percent(tmp_path: Path) -> None:
    generate_samples(tmp_path, seed=2, rows=3000)
    files_by_sha: dict[object, set[str]] = defaultdict(set)
    for label, rows in mos_corpora(tmp_path).items():
        for row in rows:
            files_by_sha[row["src_sha256"]].add(label)
    shared = sum(len(files) > 1 for files in files_by_sha.values())
    assert 0.02 * len(files_by_sha) <= shared <= 0.08 * len(files_by_sha)


def test_dmos_corpus_is_present_and_labelled(sample_dir: Path) -> None:
    rows = mos_corpora(sample_dir)["live-vqa"]
    assert rows
    assert {row["corpus"] for row in rows} == {"live-vqa"}
    finite = [row["mos"] for row in rows if isinstance(row["mos"], float) and math.isfinite(row["mos"])]
    assert finite
    # Within 0-100 apart from the planted near misses (at most 0.45 past the range).
    assert all(-0.45 <= value <= 100.45 for value in finite if isinstance(value, float))


def test_each_kind_of_reject_row_is_present(sample_dir: Path) -> None:
    corpora = mos_corpora(sample_dir)
    assert any(row["corpus"] == "lsvq-beta" for row in corpora["lsvq"])
    assert any(is_nan(row["mos"]) for rows in corpora.values() for row in rows)
    out_of_acr_range = [
        row for label in ACR_CORPORA for row in corpora[label]
        if isinstance(row["mos"], float) and math.isfinite(row["mos"]) and not 1.0 <= row["mos"] <= 5.0
    ]  # fmt: skip
    assert out_of_acr_range
    raw = b"".join(path.read_bytes() for path in sorted((sample_dir / "mos").glob("*.jsonl")))
    assert b'"mos": NaN' in raw


def test_mos_values_sit_in_their_native_range_apart_from_the_planted_rejects(tmp_path: Path) -> None:
    generate_samples(tmp_path, seed=6, rows=3000)
    native = dict.fromkeys(ACR_CORPORA, (1.0, 5.0)) | {
        "waterloo-ivc-4k": (0.0, 100.0), "live-vqa": (0.0, 100.0),
    }  # fmt: skip
    total = outside = 0
    for label, rows in mos_corpora(tmp_path).items():
        low, high = native[label]
        for row in rows:
            total += 1
            mos = row["mos"]
            assert isinstance(mos, float)
            outside += not low - 0.45 <= mos <= high + 0.45  # NaN counts as outside
    assert 0 < outside <= total // 100


def test_each_corpus_has_near_misses_that_a_wider_slack_admits(tmp_path: Path) -> None:
    """~1% per corpus lie 0.1-0.45 past the range: rejected at slack 0.05, admitted at 0.5."""
    generate_samples(tmp_path, seed=0, rows=600)
    native = dict.fromkeys(ACR_CORPORA, (1.0, 5.0)) | {"waterloo-ivc-4k": (0.0, 100.0), "live-vqa": (0.0, 100.0)}
    for label, rows in mos_corpora(tmp_path).items():
        low, high = native[label]
        scores = [row["mos"] for row in rows if isinstance(row["mos"], float)]
        near = [mos for mos in scores if 0.1 <= max(low - mos, mos - high) <= 0.45]
        assert near, label
