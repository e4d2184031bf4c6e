"""Deterministic synthetic corpora: encode-grid shards and MOS corpora with real-world quirks."""

# Randomness here shapes sample data, it protects nothing: the non-crypto Mersenne Twister
# is the point (seedable, reproducible), hence the S311 waivers below.

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from corpusprov.defaults import ENCODE_GRID_REQUIRED_KEYS, MOS_OPTIONAL_KEYS, MOS_REQUIRED_KEYS
from corpusprov.errors import UsageError
from corpusprov.fsutil import atomic_writer

__all__ = [
    "ENCODE_HOSTS",
    "MIN_MOS_ROWS",
    "MIN_ROWS",
    "MOS_CORPORA",
    "SampleFile",
    "SampleResult",
    "generate_samples",
    "iter_encode_lines",
    "iter_encode_rows",
    "iter_mos_lines",
    "iter_mos_rows",
]

#: Fewer encode rows than this cannot carry every quirk (3 shards, cross-shard duplicates).
MIN_ROWS = 10
#: Fewer MOS rows than this cannot carry every quirk (4 rows per corpus file).
MIN_MOS_ROWS = 20
#: The machines the encode-grid shards come from, one shard file each.
ENCODE_HOSTS: tuple[str, ...] = ("grid-host-a", "grid-host-b", "grid-host-c")
#: The MOS corpus labels, one file each, in generation order.
MOS_CORPORA: tuple[str, ...] = ("konvid-1k", "lsvq", "youtube-ugc", "waterloo-ivc-4k", "live-vqa")

JsonRow = dict[str, object]

# Same bytes as json.dumps(row, ensure_ascii=False) (default separators, insertion order,
# bare NaN), but built once: json.dumps builds a new encoder per call when ensure_ascii=False.
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)
_WRITE_BATCH_ROWS = 4096
_NAN = float("nan")


@dataclass(frozen=True)
class SampleFile:
    """One file the generator wrote."""

    path: Path
    """Where the file was written."""
    kind: str
    """``"encode"`` for an encode-grid shard, ``"mos"`` for a MOS corpus."""
    rows: int
    """Lines (JSON objects) in the file."""


@dataclass(frozen=True)
class SampleResult:
    """Every file one ``generate_samples`` call wrote, encode shards first."""

    files: tuple[SampleFile, ...]
    """The files in generation order."""


# ---------------------------------------------------------------- shared helpers


def _sha256_of(name: str) -> str:
    # A stand-in for hashing the video bytes: same name, same file, same hash.
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def _iso_utc(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def _padding(extra_width: int) -> JsonRow:
    """Padding fields whose serialised form (``, "key": "value"``) adds ``extra_width`` bytes."""
    if extra_width < 0:
        raise UsageError(f"extra_width must be >= 0, got {extra_width}")
    fields: JsonRow = {}
    remaining = extra_width
    while remaining > 0:
        key = f"x_pad_{len(fields):02d}"
        overhead = len(key) + 8  # ', ' + two pairs of quotes + ': '
        value_len = max(0, min(1024 - overhead, remaining - overhead))
        fields[key] = "x" * value_len
        remaining -= overhead + value_len
    return fields


def _spread_positions(rng: random.Random, size: int, counts: dict[str, int]) -> dict[int, str]:
    """Place ``counts[kind]`` special rows at distinct positions ``1..size-1`` (row 0 stays plain)."""
    total = sum(counts.values())
    positions = rng.sample(range(1, size), total)
    kinds = itertools.chain.from_iterable(itertools.repeat(kind, n) for kind, n in counts.items())
    return dict(zip(positions, kinds, strict=True))


# ---------------------------------------------------------------- encode grid


@dataclass(frozen=True, slots=True)
class _Block:
    """Fields that travel together, with their serialised form inside an object."""

    fields: JsonRow
    text: str


def _block(fields: JsonRow) -> _Block:
    # A row serialises as "{" + ", ".join('"key": value') + "}", so the inner texts of
    # sub-objects joined with ", " are byte for byte what json.dumps gives for the whole row.
    # Precomputing them is what makes a million rows cheap: float repr costs ~0.4 µs each.
    return _Block(fields, _ENCODER.encode(fields)[1:-1])


@dataclass(frozen=True, slots=True)
class _Source:
    block: _Block
    sha_prefix: str
    complexity: float
    kbps_base: float
    megapixel_frames: float
    pixel_rate: float
    n_frames: int
    duration_s: float
    rss_base: float


@dataclass(frozen=True, slots=True)
class _Combo:
    head: _Block  # encoder, encoder_version, preset
    crf_int: _Block
    crf_float: _Block
    tail: _Block  # rc_mode ... container
    path_stem: str
    quality_drop: float
    kbps_factor: float
    ms_per_megapixel: float


@dataclass(frozen=True, slots=True)
class _Score:
    block: _Block  # vmaf_score ... ms_ssim
    ciede2000: _Block
    cambi: _Block


class _EncodeParts(NamedTuple):
    run_id: str
    timestamp: str
    host: _Block
    source: _Source
    combo: _Combo
    crf_as_float: bool
    measures: tuple[str, int, float, float, int, int, float, float, int]
    score: _Score
    ciede2000: _Block
    cambi: _Block
    tail: _Block


_TITLES = (
    "BigBuckBunny", "Sintel", "Café_ñandú", "TearsOfSteel", "ElephantsDream", "CrowdRun",
    "東京_夜景", "ParkJoy", "DucksTakeOff", "OldTownCross", "InToTree", "Zürich_Straßenbahn",
    "Netflix_Aerial", "Netflix_Boat", "Netflix_FoodMarket", "Москва_метро", "Netflix_Narrator",
    "Meridian", "Cosmos_Laundromat", "São_Paulo_chuva", "Jockey", "Beauty", "HoneyBee",
    "ShakeNDry",
)  # fmt: skip
_RESOLUTIONS = ((1920, 1080), (1280, 720), (3840, 2160), (2560, 1440), (854, 480))
_RESOLUTION_WEIGHTS = (5, 3, 2, 1, 1)
_FRAMERATES = (24.0, 25.0, 29.97, 30.0, 50.0, 60.0)

# encoder, version, presets, crf range, container, bitrate efficiency, reference crf,
# encode ms per megapixel for each preset
_ENCODERS: tuple[tuple[str, str, tuple[int | str, ...], range, str, float, int,
                       tuple[float, ...]], ...] = (
    ("libx264", "0.164.3108", ("veryfast", "medium", "slow"), range(18, 41), "mp4", 1.0, 23,
     (0.9, 2.6, 5.8)),
    ("libx265", "3.5+1-f0c1022b6", ("veryfast", "medium", "slow"), range(18, 41), "mp4", 0.7, 23,
     (3.1, 8.4, 19.0)),
    ("libsvtav1", "1.7.0", (4, 6, 8), range(20, 56), "mkv", 0.6, 35, (21.0, 8.5, 3.2)),
    ("libaom-av1", "3.8.0", (4, 6, 8), range(20, 56), "mkv", 0.58, 35, (64.0, 22.0, 9.0)),
    ("libvpx-vp9", "1.13.1", (2, 4, 5), range(20, 56), "webm", 0.75, 33, (31.0, 12.0, 6.5)),
)  # fmt: skip


def _extra_params(encoder: str, preset: int | str, keyint: int, bframes: int) -> str:
    if encoder.startswith("libx26"):
        return f"-g {keyint} -bf {bframes}"
    if encoder == "libsvtav1":
        return f"-svtav1-params tune=0:keyint={keyint}"
    if encoder == "libaom-av1":
        return f"-cpu-used {preset} -row-mt 1 -g {keyint}"
    return f"-b:v 0 -row-mt 1 -tile-columns 2 -g {keyint}"


def _build_combos() -> tuple[_Combo, ...]:
    combos: list[_Combo] = []
    for encoder, version, presets, crfs, container, efficiency, crf_ref, speeds in _ENCODERS:
        for rank, (preset, ms_per_megapixel) in enumerate(zip(presets, speeds, strict=True)):
            bframes = 3 if encoder.startswith("libx26") else 0
            tune = "vq" if encoder == "libsvtav1" else "psnr" if rank == 0 else None
            tail = _block({
                "rc_mode": "crf", "pass_count": 1, "tune": tune, "keyint": 240,
                "bframes": bframes, "extra_params": _extra_params(encoder, preset, 240, bframes),
                "container": container,
            })  # fmt: skip
            head = _block({"encoder": encoder, "encoder_version": version, "preset": preset})
            for crf in crfs:
                position = (crf - crfs.start) / (crfs.stop - 1 - crfs.start)
                combos.append(_Combo(
                    head=head, crf_int=_block({"crf": crf}),
                    crf_float=_block({"crf": float(crf)}), tail=tail,
                    path_stem=f"{encoder}_{preset}_crf{crf}.{container}",
                    # Slower presets buy a little quality at the same crf.
                    quality_drop=4.0 + 55.0 * position**1.4 - 0.8 * rank,
                    kbps_factor=efficiency * 2.0 ** ((crf_ref - crf) / 6.0),
                    ms_per_megapixel=ms_per_megapixel,
                ))  # fmt: skip
    return tuple(combos)


_COMBOS = _build_combos()
#: Each source covers at most this many grid cells, so the grid has many sources.
_CELLS_PER_SOURCE = 120
#: Score blocks are drawn from pools: this many per quarter-point of VMAF.
_SCORE_VARIANTS = 16
_NAN_CIEDE = _block({"ciede2000": _NAN})
_NAN_CAMBI = _block({"cambi": _NAN})
_TAILS = tuple(
    _block({"ffmpeg_version": "6.1.1", "vmaf_binary_version": "3.0.0", "attempt": attempt,
            "exit_status": 0})
    for attempt in (1, 2)
)
_MEASURE_KEYS = ("encode_path", "encode_size_bytes", "bitrate_kbps", "bits_per_pixel",
                 "encode_time_ms", "encode_cpu_time_ms", "encode_fps", "peak_rss_mib",
                 "score_time_ms")


def _build_source(rng: random.Random, index: int) -> _Source:
    title = _TITLES[index % len(_TITLES)]
    variant = index // len(_TITLES)
    width, height = rng.choices(_RESOLUTIONS, _RESOLUTION_WEIGHTS)[0]
    framerate = rng.choice(_FRAMERATES)
    stem = f"{title}_{height}p{round(framerate)}"
    name = f"{stem}.y4m" if variant == 0 else f"{stem}_v{variant:03d}.y4m"
    sha256 = _sha256_of(name)
    duration = rng.choice((5.0, 10.0, 10.0, 20.0))
    n_frames = round(duration * framerate)
    complexity = 0.6 + 0.8 * rng.random()
    ti = round(5.0 + 30.0 * complexity * rng.random(), 3)
    pix_fmt = "yuv420p10le" if rng.random() < 0.2 else "yuv420p"
    megapixels = width * height / 1e6
    block = _block({
        "src": name, "src_sha256": sha256, "width": width, "height": height, "pix_fmt": pix_fmt,
        "framerate": framerate, "duration_s": duration, "n_frames": n_frames,
        "si": round(30.0 + 60.0 * complexity * rng.random(), 3), "ti": ti,
        "motion2": round(ti * 0.3, 5),
        "color_primaries": "bt2020" if pix_fmt == "yuv420p10le" else "bt709",
        "color_range": "tv",
        "vmaf_model": "vmaf_4k_v0.6.1" if height >= 2160 else "vmaf_v0.6.1",
    })  # fmt: skip
    return _Source(block=block, sha_prefix=sha256[:12], complexity=complexity,
                   kbps_base=megapixels * framerate * 80.0 * complexity,
                   megapixel_frames=megapixels * n_frames, pixel_rate=megapixels * 1e6 * framerate,
                   n_frames=n_frames, duration_s=duration, rss_base=140.0 + megapixels * 90.0)


def _build_scores(rng: random.Random, bucket: int) -> list[_Score]:
    """Score blocks for a VMAF in ``[bucket / 4, (bucket + 1) / 4)``, features consistent with it."""
    scores: list[_Score] = []
    for _ in range(_SCORE_VARIANTS):
        rand = rng.random
        vmaf = min(100.0, round((bucket + rand()) / 4.0, 4))
        unit = vmaf / 100.0
        spread = (1.0 - unit) * 12.0 + 1.0
        block = _block({
            "vmaf_score": vmaf,
            "vmaf_neg": round(max(0.0, vmaf - 4.0 * rand() * (1.0 - unit) - 0.5), 4),
            "vmaf_min": round(max(0.0, vmaf - spread * (2.0 + 2.0 * rand())), 4),
            "vmaf_max": round(min(100.0, vmaf + spread * rand()), 4),
            "vmaf_harmonic_mean": round(max(0.0, vmaf - 0.05 * spread * rand()), 4),
            "vmaf_percentile_5": round(max(0.0, vmaf - spread * (1.0 + rand())), 4),
            "vmaf_std_dev": round(spread * (0.4 + 0.3 * rand()), 4),
            "adm2": round(0.78 + 0.215 * unit + 0.004 * rand(), 6),
            "vif_scale0": round(0.25 + 0.6 * unit + 0.02 * rand(), 6),
            "vif_scale1": round(0.45 + 0.5 * unit + 0.02 * rand(), 6),
            "vif_scale2": round(0.52 + 0.45 * unit + 0.02 * rand(), 6),
            "vif_scale3": round(0.57 + 0.41 * unit + 0.02 * rand(), 6),
            "psnr_y": round(26.0 + 22.0 * unit + rand(), 4),
            "psnr_cb": round(29.0 + 20.0 * unit + 1.5 * rand(), 4),
            "psnr_cr": round(29.5 + 20.0 * unit + 1.5 * rand(), 4),
            "ssim": round(min(1.0, 0.86 + 0.138 * unit + 0.002 * rand()), 6),
            "ms_ssim": round(min(1.0, 0.88 + 0.118 * unit + 0.002 * rand()), 6),
        })  # fmt: skip
        scores.append(_Score(
            block=block, ciede2000=_block({"ciede2000": round(27.0 + 18.0 * unit + rand(), 4)}),
            cambi=_block({"cambi": round(max(0.0, 3.5 * (1.0 - unit) * rand()), 4)}),
        ))  # fmt: skip
    return scores


def _shard_sizes(rows: int) -> tuple[int, int, int]:
    third = rows // 3
    return (rows - 2 * third, third, third)


def _encode_parts(rng: random.Random, n: int) -> Iterator[_EncodeParts]:
    """The encode-grid stream as prebuilt pieces; rows and lines are assembled from them."""
    sizes = _shard_sizes(n)
    plans: list[dict[int, str]] = []
    for shard_index, size in enumerate(sizes):
        counts = {"cross": max(1, round(size * 0.1)) if shard_index else 0,
                  "within": max(1, size // 200)}
        plans.append(_spread_positions(rng, size, counts))
    unique_keys = n - sum(len(plan) for plan in plans)
    source_count = max(len(_TITLES), math.ceil(unique_keys / _CELLS_PER_SOURCE))
    sources = [_build_source(rng, index) for index in range(source_count)]
    # Pools fill lazily from their own stream, so which buckets a run needs does not
    # shift the row stream.
    pool_rng = random.Random(rng.getrandbits(64))  # noqa: S311
    score_pools: dict[int, list[_Score]] = {}
    combo_count = len(_COMBOS)
    randrange, rand, getrandbits = rng.randrange, rng.random, rng.getrandbits

    fresh_keys = 0
    row_number = 0
    float_crf_shown = False
    for host_name, size, plan in zip(ENCODE_HOSTS, sizes, plans, strict=True):
        shard_start = fresh_keys
        threads = rng.choice((8, 16, 32))
        host = _block({"host": host_name, "threads": threads})
        thread_scale = 16.0 / threads
        epoch = 1_714_521_600 + randrange(86_400 * 60)  # a start in May-June 2024
        for position in range(size):
            kind = plan.get(position)
            if kind is None:
                key_index, crf_as_float = fresh_keys, False
                fresh_keys += 1
            elif kind == "cross":
                key_index = randrange(shard_start)
                # The first cross-shard repeat always carries the float form, so even the
                # smallest sample shows that 23 and 23.0 are the same key.
                crf_as_float = not float_crf_shown or rand() < 0.5
                float_crf_shown = True
            else:
                key_index = randrange(shard_start, fresh_keys)
                crf_as_float = rand() < 0.3
            source_index = key_index % source_count
            source = sources[source_index]
            # Distinct cells per source while key_index // source_count < len(_COMBOS).
            combo = _COMBOS[(key_index // source_count + source_index * 97) % combo_count]

            vmaf = 98.5 - source.complexity * combo.quality_drop + 3.0 * (rand() - 0.5)
            bucket = min(399, max(0, int(vmaf * 4.0)))
            pool = score_pools.get(bucket)
            if pool is None:
                pool = score_pools[bucket] = _build_scores(pool_rng, bucket)
            score = pool[getrandbits(4)]

            kbps = source.kbps_base * combo.kbps_factor * (0.9 + 0.2 * rand())
            encode_ms = int(source.megapixel_frames * combo.ms_per_megapixel * thread_scale
                            * (0.85 + 0.3 * rand())) + 1
            measures = (
                f"encodes/{source.sha_prefix}/{combo.path_stem}",
                int(kbps * 125.0 * source.duration_s),
                round(kbps, 3),
                round(kbps * 1000.0 / source.pixel_rate, 5),
                encode_ms,
                int(encode_ms * threads * (0.55 + 0.3 * rand())),
                round(source.n_frames * 1000.0 / encode_ms, 2),
                round(source.rss_base * (1.0 + rand()), 1),
                int(source.megapixel_frames * 11.0 * (0.9 + 0.2 * rand())),
            )
            epoch += 3 + randrange(12)
            yield _EncodeParts(
                run_id=f"{getrandbits(128):032x}",
                timestamp=_iso_utc(epoch),
                host=host, source=source, combo=combo, crf_as_float=crf_as_float,
                measures=measures, score=score,
                # vmaf-tune writes NaN when a feature extractor was unavailable for a run.
                ciede2000=_NAN_CIEDE if rand() < 0.01 else score.ciede2000,
                cambi=_NAN_CAMBI if row_number == 1 or rand() < 0.01 else score.cambi,
                tail=_TAILS[1] if rand() < 0.01 else _TAILS[0],
            )
            row_number += 1


def _check_required(row: JsonRow) -> None:
    missing = [key for key in ENCODE_GRID_REQUIRED_KEYS if key not in row]
    if missing:  # only if defaults.py grows a key this generator does not know yet
        raise RuntimeError(f"sample encode rows lack required keys {missing}")


def iter_encode_rows(rng: random.Random, n: int, *, extra_width: int = 0) -> Iterator[JsonRow]:
    """Yield ``n`` encode-grid rows: the shards of grid-host-a, -b and -c, concatenated.

    Rows of hosts b and c repeat ~10% of earlier hosts' natural keys (some with ``crf`` as a
    float), each host repeats a few of its own keys, and ~2% of rows carry a NaN feature.
    ``extra_width`` adds that many bytes of ``x_pad_NN`` fields to each serialised row
    (16 bytes at least, the overhead of one field), so benchmarks can vary row width alone.
    """
    _check_rows(n)
    return _encode_dicts(_encode_parts(rng, n), _padding(extra_width))


def iter_encode_lines(rng: random.Random, n: int, *, extra_width: int = 0) -> Iterator[str]:
    """The rows of ``iter_encode_rows(rng, n)`` as ``json.dumps(row, ensure_ascii=False)`` text."""
    _check_rows(n)
    return _encode_texts(_encode_parts(rng, n), _padding(extra_width))


def _check_rows(n: int) -> None:
    if n < MIN_ROWS:
        raise UsageError(f"rows must be at least {MIN_ROWS}, got {n}",
                         fix=f"pass --rows {MIN_ROWS} or more")


def _encode_dicts(parts: Iterator[_EncodeParts], padding: JsonRow) -> Iterator[JsonRow]:
    first = True
    for (run_id, timestamp, host, source, combo, crf_as_float, measures, score, ciede2000,
         cambi, tail) in parts:
        row: JsonRow = {
            "schema_version": 3, "run_id": run_id, "timestamp": timestamp, **host.fields,
            **source.block.fields, **combo.head.fields,
            **(combo.crf_float if crf_as_float else combo.crf_int).fields,
            **combo.tail.fields, **dict(zip(_MEASURE_KEYS, measures, strict=True)),
            **score.block.fields, **ciede2000.fields, **cambi.fields, **tail.fields, **padding,
        }  # fmt: skip
        if first:
            _check_required(row)
            first = False
        yield row


def _encode_texts(parts: Iterator[_EncodeParts], padding: JsonRow) -> Iterator[str]:
    pad = f", {_block(padding).text}" if padding else ""
    first = True
    for (run_id, timestamp, host, source, combo, crf_as_float, measures, score, ciede2000,
         cambi, tail) in parts:
        path, size, kbps, bpp, encode_ms, cpu_ms, fps, rss, score_ms = measures
        crf = combo.crf_float if crf_as_float else combo.crf_int
        # Every value here is a safe ASCII string, an int or a finite float, whose JSON is
        # its str/repr; the tests check each line against json.dumps of the same row.
        line = (
            f'{{"schema_version": 3, "run_id": "{run_id}", "timestamp": "{timestamp}", '
            f"{host.text}, {source.block.text}, {combo.head.text}, {crf.text}, "
            f'{combo.tail.text}, "encode_path": "{path}", "encode_size_bytes": {size}, '
            f'"bitrate_kbps": {kbps!r}, "bits_per_pixel": {bpp!r}, "encode_time_ms": {encode_ms}, '
            f'"encode_cpu_time_ms": {cpu_ms}, "encode_fps": {fps!r}, "peak_rss_mib": {rss!r}, '
            f'"score_time_ms": {score_ms}, {score.block.text}, {ciede2000.text}, {cambi.text}, '
            f"{tail.text}{pad}}}"
        )
        if first:
            _check_required(json.loads(line))
            first = False
        yield line


# ---------------------------------------------------------------- MOS corpora


@dataclass(frozen=True)
class _Corpus:
    label: str
    low: float
    high: float
    higher_is_better: bool
    weight: float
    decimals: int
    std_range: tuple[float, float]
    ratings: tuple[int, int]
    version: str
    ingest_epoch: int
    bad_mos: tuple[float, ...]


_CORPORA = (
    _Corpus("konvid-1k", 1.0, 5.0, True, 0.15, 4, (0.35, 0.95), (100, 130), "1.0",
            1_672_531_200, (6.2, 5.4, 0.3)),
    _Corpus("lsvq", 1.0, 5.0, True, 0.35, 4, (0.4, 1.1), (30, 40), "2021.1",
            1_675_209_600, (6.2, 0.0)),
    _Corpus("youtube-ugc", 1.0, 5.0, True, 0.2, 3, (0.3, 0.9), (80, 140), "2019",
            1_677_628_800, (6.2, 5.3)),
    _Corpus("waterloo-ivc-4k", 0.0, 100.0, True, 0.1, 2, (8.0, 18.0), (28, 32), "2019.2",
            1_680_307_200, (104.5, -3.2)),
    _Corpus("live-vqa", 0.0, 100.0, False, 0.2, 2, (5.0, 15.0), (29, 38), "2010",
            1_682_899_200, (113.0, -7.5)),
)  # fmt: skip
_MOS_KEYS = frozenset(MOS_REQUIRED_KEYS + MOS_OPTIONAL_KEYS)
_UPSTREAM_ENCODERS = ("h264", "vp9", "hevc", "av1")
_NON_ASCII_STEMS = ("Café_ñandú", "東京_夜景", "Zürich_Straßenbahn", "Москва_метро", "서울_야경")
_UGC_CATEGORIES = ("Gaming", "Vlog", "Sports", "Animation", "Lecture", "MusicVideo", "NewsClip")
_LIVE_CONTENTS = ("pa", "rb", "rh", "tr", "st", "sf", "bs", "sh", "mc", "pr")
_WATERLOO_CONTENTS = ("Animal", "Bund", "Crowd", "Fountain", "Harbour", "Lake", "Runners")


@dataclass(frozen=True, slots=True)
class _Video:
    src: str
    sha256: str
    quality: float
    std_dev: float | None
    width: int
    height: int
    framerate: float
    duration_s: float
    size_bytes: int


def _mos_file_sizes(total: int) -> list[int]:
    floor = MIN_MOS_ROWS // len(_CORPORA)
    spare = total - floor * len(_CORPORA)
    sizes = [floor + int(spare * corpus.weight) for corpus in _CORPORA]
    sizes[1] += total - sum(sizes)  # the rounding remainder goes to the biggest corpus
    return sizes


def _mos_src_name(rng: random.Random, label: str, index: int, stem: str | None) -> str:
    tag = f"_{stem}" if stem else ""
    if label == "konvid-1k":
        return f"{3_000_000_000 + index * 7919 + rng.randrange(7919)}{tag}.mp4"
    if label == "lsvq":
        return f"{rng.choice(('ia', 'yfcc'))}-batch{rng.randint(1, 4)}/{index:06d}{tag}.mp4"
    if label == "youtube-ugc":
        resolution = rng.choice(("360", "480", "720", "1080", "2160"))
        return f"{rng.choice(_UGC_CATEGORIES)}_{resolution}P-{index:04x}{tag}.mkv"
    if label == "waterloo-ivc-4k":
        content = rng.choice(_WATERLOO_CONTENTS)
        return f"{content}_{rng.choice(('h264', 'hevc', 'vp9'))}_{index:04d}{tag}.mp4"
    return f"{rng.choice(_LIVE_CONTENTS)}{index}{tag}_25fps.yuv"


def _new_video(rng: random.Random, corpus: _Corpus, index: int, stem: str | None) -> _Video:
    src = _mos_src_name(rng, corpus.label, index, stem)
    if corpus.label == "waterloo-ivc-4k":
        width, height = 3840, 2160
    else:
        width, height = rng.choice(((960, 540), (1280, 720), (1920, 1080), (640, 360)))
    framerate = rng.choice((23.976, 24.0, 25.0, 29.97, 30.0))
    duration = round(rng.uniform(5.0, 12.0), 3)
    return _Video(src, _sha256_of(src), rng.random(), _std_dev(rng, corpus), width, height,
                  framerate, duration, int(width * height * duration * rng.uniform(0.05, 0.4)))


def _std_dev(rng: random.Random, corpus: _Corpus) -> float | None:
    draw = rng.random()
    if draw < 0.06:
        return None  # not published for this row
    if draw < 0.09:
        return 0.0  # published as 0: unknown, not perfect agreement
    return round(rng.uniform(*corpus.std_range), 4)


def _mos_value(rng: random.Random, corpus: _Corpus, quality: float) -> float:
    span = corpus.high - corpus.low
    level = 0.1 + 0.8 * quality if corpus.higher_is_better else 0.85 - 0.65 * quality
    value = corpus.low + span * (level + 0.06 * (rng.random() - 0.5))
    return round(min(corpus.high, max(corpus.low, value)), corpus.decimals)


def _mos_row(rng: random.Random, corpus: _Corpus, video: _Video, *, mos: float,
             label: str, std_dev: float | None) -> JsonRow:
    rand = rng.random
    # Keys go in in the order of MOS_REQUIRED_KEYS + MOS_OPTIONAL_KEYS.
    row: JsonRow = {
        "src": video.src,
        "src_sha256": video.sha256,
        "mos": mos,
        "corpus": label,
        "src_size_bytes": video.size_bytes,
        "width": video.width,
        "height": video.height,
        "framerate": video.framerate,
        "duration_s": video.duration_s,
        "pix_fmt": "yuv420p",
    }
    if rand() < 0.4:
        row["encoder_upstream"] = _UPSTREAM_ENCODERS[int(rand() * len(_UPSTREAM_ENCODERS))]
    if std_dev is not None:
        row["mos_std_dev"] = std_dev
    low, high = corpus.ratings
    row["n_ratings"] = low + int(rand() * (high - low + 1))
    row["corpus_version"] = corpus.version
    row["ingested_at_utc"] = _iso_utc(corpus.ingest_epoch + int(rand() * 86_400 * 90))
    return row


def _check_mos_keys(row: JsonRow) -> None:
    missing = [key for key in MOS_REQUIRED_KEYS if key not in row]
    unknown = [key for key in row if key not in _MOS_KEYS and not key.startswith("x_pad_")]
    if missing or unknown:  # only if defaults.py changes under this generator
        raise RuntimeError(f"sample MOS rows lack {missing} or carry unknown {unknown}")


def iter_mos_rows(rng: random.Random, n: int, *, extra_width: int = 0) -> Iterator[JsonRow]:
    """Yield ``n`` MOS rows: the corpora of ``MOS_CORPORA``, one after the other.

    ~5% of sources reappear in a later corpus (same sha, other ``mos_std_dev``), a few
    repeat within a corpus, and a few rows are meant to be rejected (unknown label
    ``lsvq-beta``, out-of-range MOS, NaN MOS). ``extra_width`` pads each row by that many bytes.
    """
    if n < MIN_MOS_ROWS:
        raise UsageError(f"mos_rows must be at least {MIN_MOS_ROWS}, got {n}",
                         fix=f"ask for {MIN_MOS_ROWS} or more MOS rows")
    return _mos_rows(rng, n, _padding(extra_width))


def iter_mos_lines(rng: random.Random, n: int, *, extra_width: int = 0) -> Iterator[str]:
    """The rows of ``iter_mos_rows(rng, n)`` as ``json.dumps(row, ensure_ascii=False)`` text."""
    return map(_ENCODER.encode, iter_mos_rows(rng, n, extra_width=extra_width))


def _mos_rows(rng: random.Random, n: int, padding: JsonRow) -> Iterator[JsonRow]:
    earlier: list[_Video] = []  # a sample of earlier corpora's sources, to reappear later
    first = True
    for file_index, (corpus, size) in enumerate(zip(_CORPORA, _mos_file_sizes(n), strict=True)):
        counts = {
            "cross": max(1, round(size * 0.05)) if file_index else 0,
            "same": max(1 if file_index < 2 else 0, size // 400),
            "label": max(1, size // 1000) if corpus.label == "lsvq" else 0,
            "range": max(1 if file_index == 0 else 0, size // 1000) if file_index < 4 else 0,
            "nan": max(1 if file_index == 2 else 0, size // 1000) if file_index >= 2 else 0,
        }
        plan = _spread_positions(rng, size, counts)
        this_corpus: list[_Video] = []
        last_fresh: _Video | None = None
        for position in range(size):
            kind = plan.get(position)
            label = corpus.label
            if kind == "cross" and earlier:
                # Swap-pop: each earlier source reappears at most once.
                pick = rng.randrange(len(earlier))
                earlier[pick], earlier[-1] = earlier[-1], earlier[pick]
                video = earlier.pop()
                draw = rng.random()
                # Some ties with the earlier row's std-dev, some missing, most different.
                std_dev = (video.std_dev if draw < 0.2 else None if draw < 0.3
                           else _std_dev(rng, corpus))
                row = _mos_row(rng, corpus, video, mos=_mos_value(rng, corpus, video.quality),
                               label=label, std_dev=std_dev)
            elif kind == "same" and last_fresh is not None:
                row = _mos_row(rng, corpus, last_fresh,
                               mos=_mos_value(rng, corpus, last_fresh.quality),
                               label=label, std_dev=_std_dev(rng, corpus))
            else:
                stem = None
                if (file_index == 1 and position == 0) or rng.random() < 0.01:
                    stem = rng.choice(_NON_ASCII_STEMS)
                video = _new_video(rng, corpus, position, stem)
                mos = _mos_value(rng, corpus, video.quality)
                if kind == "label":
                    label = f"{corpus.label}-beta"
                elif kind == "range":
                    mos = rng.choice(corpus.bad_mos)
                elif kind == "nan":
                    mos = _NAN
                else:
                    last_fresh = video
                    if position == 0 or rng.random() < 0.25:
                        this_corpus.append(video)
                row = _mos_row(rng, corpus, video, mos=mos, label=label, std_dev=video.std_dev)
            if padding:
                row.update(padding)
            if first:
                _check_mos_keys(row)
                first = False
            yield row
        earlier.extend(this_corpus)
        if len(earlier) > 50_000:  # bound memory on huge samples
            earlier = rng.sample(earlier, 50_000)


# ---------------------------------------------------------------- files


def _write_lines(path: Path, lines: Iterator[str], count: int) -> int:
    """Write the next ``count`` lines of ``lines`` to ``path`` atomically, in large chunks."""
    written = 0
    with atomic_writer(path) as handle:
        while written < count:
            batch = list(itertools.islice(lines, min(_WRITE_BATCH_ROWS, count - written)))
            if not batch:
                break
            batch.append("")
            handle.write("\n".join(batch).encode("utf-8"))
            written += len(batch) - 1
    return written


def generate_samples(out_dir: Path, *, seed: int = 0, rows: int = 600,
                     mos_rows: int | None = None, extra_width: int = 0) -> SampleResult:
    """Write ``out_dir/encode/grid-host-*.jsonl`` and ``out_dir/mos/<corpus>.jsonl``.

    ``rows`` encode rows in total over three shards; ``mos_rows`` (default about 2/3 of
    ``rows``, at least ``MIN_MOS_ROWS``) over the MOS corpora. The same arguments always
    give byte-identical files. Other files in ``out_dir`` are left alone.
    """
    if isinstance(seed, bool) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed}",
                         fix="pass --seed 0 or another non-negative integer")
    _check_rows(rows)
    mos_total = max(MIN_MOS_ROWS, round(rows * 2 / 3)) if mos_rows is None else mos_rows
    master = random.Random(seed)  # noqa: S311 - reproducible sample data, not secrets
    # Separate streams: the encode shards do not depend on how many MOS rows are asked for.
    encode_rng = random.Random(master.getrandbits(64))  # noqa: S311
    mos_rng = random.Random(master.getrandbits(64))  # noqa: S311
    # Both streams are created (and so validated) before the first file is written.
    encode_lines = iter_encode_lines(encode_rng, rows, extra_width=extra_width)
    mos_lines = iter_mos_lines(mos_rng, mos_total, extra_width=extra_width)

    files: list[SampleFile] = []
    for host, size in zip(ENCODE_HOSTS, _shard_sizes(rows), strict=True):
        path = out_dir / "encode" / f"{host}.jsonl"
        files.append(SampleFile(path, "encode", _write_lines(path, encode_lines, size)))
    for corpus, size in zip(_CORPORA, _mos_file_sizes(mos_total), strict=True):
        path = out_dir / "mos" / f"{corpus.label}.jsonl"
        files.append(SampleFile(path, "mos", _write_lines(path, mos_lines, size)))
    return SampleResult(tuple(files))
