"""Encode-grid sample rows: three host shards with cross-shard repeats, float crf, NaN features, a failed probe."""

# Randomness here shapes sample data, it protects nothing: the non-crypto Mersenne Twister
# is the point (seedable, reproducible), hence the S311 waiver below.

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from corpusprov.errors import UsageError
from corpusprov.params.defaults import ENCODE_GRID_REQUIRED_KEYS
from corpusprov.sample._common import ENCODER, NAN, JsonRow, iso_utc, padding_fields, sha256_of, spread_positions

__all__ = ["ENCODE_HOSTS", "MIN_ROWS", "check_rows", "iter_encode_lines", "iter_encode_rows", "shard_sizes"]

#: Fewer encode rows than this cannot carry every quirk (3 shards, cross-shard duplicates).
MIN_ROWS = 10
#: The machines the encode-grid shards come from, one shard file each.
ENCODE_HOSTS: tuple[str, ...] = ("grid-host-a", "grid-host-b", "grid-host-c")


@dataclass(frozen=True, slots=True)
class _Block:
    """Fields that travel together, with their serialised form inside an object."""

    fields: JsonRow
    text: str


def _block(fields: JsonRow) -> _Block:
    # A row serialises as "{" + ", ".join('"key": value') + "}", so the inner texts of
    # sub-objects joined with ", " are byte for byte what json.dumps gives for the whole row.
    # Precomputing them is what makes a million rows cheap: float repr costs ~0.4 µs each.
    return _Block(fields, ENCODER.encode(fields)[1:-1])


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
    crf: _Block  # the combo's int or float form, or the failed probe's NaN
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
_NAN_CIEDE = _block({"ciede2000": NAN})
_NAN_CAMBI = _block({"cambi": NAN})
_NAN_CRF = _block({"crf": NAN})
_TAILS = tuple(
    _block({"ffmpeg_version": "6.1.1", "vmaf_binary_version": "3.0.0", "attempt": attempt, "exit_status": 0})
    for attempt in (1, 2)
)
_MEASURE_KEYS = (
    "encode_path",
    "encode_size_bytes",
    "bitrate_kbps",
    "bits_per_pixel",
    "encode_time_ms",
    "encode_cpu_time_ms",
    "encode_fps",
    "peak_rss_mib",
    "score_time_ms",
)


def _build_source(rng: random.Random, index: int) -> _Source:
    title = _TITLES[index % len(_TITLES)]
    variant = index // len(_TITLES)
    width, height = rng.choices(_RESOLUTIONS, _RESOLUTION_WEIGHTS)[0]
    framerate = rng.choice(_FRAMERATES)
    stem = f"{title}_{height}p{round(framerate)}"
    name = f"{stem}.y4m" if variant == 0 else f"{stem}_v{variant:03d}.y4m"
    sha256 = sha256_of(name)
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
        # Clip and shot facts, derived from draws already made (no new draws: the row
        # stream stays as it was); the shot figures are full-precision floats, as written.
        "clip_mode": "full",
        "hdr_transfer": "smpte2084" if pix_fmt == "yuv420p10le" else "bt709",
        "hdr_primaries": "bt2020" if pix_fmt == "yuv420p10le" else "bt709",
        "hdr_forced": False,
        "shot_count": 1 + int(complexity * 7.0),
        "shot_avg_duration_sec": duration / (1 + int(complexity * 7.0)),
        "shot_duration_std_sec": duration / (1 + int(complexity * 7.0)) * (complexity - 0.55) / 2.0,
    })  # fmt: skip
    return _Source(
        block=block,
        sha_prefix=sha256[:12],
        complexity=complexity,
        kbps_base=megapixels * framerate * 80.0 * complexity,
        megapixel_frames=megapixels * n_frames,
        pixel_rate=megapixels * 1e6 * framerate,
        n_frames=n_frames,
        duration_s=duration,
        rss_base=140.0 + megapixels * 90.0,
    )


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
            # Per-clip feature statistics and encoder internals (the trainer's feature
            # columns), at full precision as vmaf-tune writes them: 1e-4..1e-3 stds print
            # with 20 digits, smaller ones as 4.0116e-05.
            **_features(rand, unit),
        })  # fmt: skip
        scores.append(_Score(
            block=block, ciede2000=_block({"ciede2000": round(27.0 + 18.0 * unit + rand(), 4)}),
            cambi=_block({"cambi": round(max(0.0, 3.5 * (1.0 - unit) * rand()), 4)}),
        ))  # fmt: skip
    return scores


def _features(rand: Callable[[], float], unit: float) -> JsonRow:
    """The schema-v3 feature means/stds and ``enc_internal_*`` columns for one score variant."""
    features: JsonRow = {
        "adm2_mean": 0.78 + 0.215 * unit + 0.004 * rand(),
        "adm2_std": 0.0001 + 0.0009 * rand(),
    }
    for scale in range(4):
        features[f"vif_scale{scale}_mean"] = 0.25 + 0.15 * scale + (0.6 - 0.1 * scale) * unit + 0.02 * rand()
        features[f"vif_scale{scale}_std"] = 0.00001 + 0.0002 * rand() * (scale + 1)
    features["motion2_mean"] = 2.0 + 18.0 * rand()
    features["motion2_std"] = 0.2 + 2.0 * rand()
    qp = 18.0 + 26.0 * (1.0 - unit) + rand()
    features.update({
        "enc_internal_qp_mean": qp,
        "enc_internal_qp_std": 0.5 + 2.5 * rand(),
        "enc_internal_bits_mean": 2000.0 + 90000.0 * unit * rand(),
        "enc_internal_bits_std": 500.0 + 20000.0 * rand(),
        "enc_internal_mv_mean": 0.5 + 6.0 * rand(),
        "enc_internal_mv_std": 0.2 + 3.0 * rand(),
        "enc_internal_itex_mean": 100.0 + 4000.0 * unit * rand(),
        "enc_internal_ptex_mean": 50.0 + 2500.0 * unit * rand(),
        "enc_internal_intra_ratio": 0.02 + 0.2 * rand(),
        "enc_internal_skip_ratio": 0.05 + 0.6 * (1.0 - unit) * rand(),
    })  # fmt: skip
    return features


def shard_sizes(rows: int) -> tuple[int, int, int]:
    """How many of ``rows`` encode rows go to each shard, in ``ENCODE_HOSTS`` order."""
    third = rows // 3
    return (rows - 2 * third, third, third)


def _encode_parts(rng: random.Random, n: int) -> Iterator[_EncodeParts]:
    """The encode-grid stream as prebuilt pieces; rows and lines are assembled from them."""
    sizes = shard_sizes(n)
    plans: list[dict[int, str]] = []
    for shard_index, size in enumerate(sizes):
        counts = {"cross": max(1, round(size * 0.1)) if shard_index else 0, "within": max(1, size // 200)}
        plans.append(spread_positions(rng, size, counts))
    # The last host's first cross-shard repeat becomes a failed probe: it re-probes a cell an
    # earlier host measured and writes crf as a bare NaN, so the merge stage has a natural-key
    # reject to show. Reusing a planned slot keeps the row count and the random stream as they
    # were; host c always has a cross slot, even at MIN_ROWS (where it is its only one).
    plans[-1][min(position for position, kind in plans[-1].items() if kind == "cross")] = "failed_probe"
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
            elif kind in ("cross", "failed_probe"):
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
            failed_probe = kind == "failed_probe"
            crf = _NAN_CRF if failed_probe else combo.crf_float if crf_as_float else combo.crf_int

            vmaf = 98.5 - source.complexity * combo.quality_drop + 3.0 * (rand() - 0.5)
            bucket = min(399, max(0, int(vmaf * 4.0)))
            pool = score_pools.get(bucket)
            if pool is None:
                pool = score_pools[bucket] = _build_scores(pool_rng, bucket)
            score = pool[getrandbits(4)]

            kbps = source.kbps_base * combo.kbps_factor * (0.9 + 0.2 * rand())
            encode_ms = int(source.megapixel_frames * combo.ms_per_megapixel * thread_scale * (0.85 + 0.3 * rand())) + 1
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
            run_id = f"{getrandbits(128):032x}"
            # vmaf-tune writes NaN when a feature extractor was unavailable for a run. The draws
            # happen for the failed probe too (same stream), but its features stay finite so
            # its crf is the row's one anomaly.
            nan_ciede2000 = rand() < 0.01 and not failed_probe
            nan_cambi = (row_number == 1 or rand() < 0.01) and not failed_probe
            yield _EncodeParts(
                run_id=run_id,
                timestamp=iso_utc(epoch),
                host=host,
                source=source,
                combo=combo,
                crf=crf,
                measures=measures,
                score=score,
                ciede2000=_NAN_CIEDE if nan_ciede2000 else score.ciede2000,
                cambi=_NAN_CAMBI if nan_cambi else score.cambi,
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
    Exactly one row of grid-host-c is a failed probe: an earlier host's cell re-probed with
    ``crf`` written as a bare NaN (finite everywhere else), for the merge stage to reject.
    ``extra_width`` adds that many bytes of ``x_pad_NN`` fields to each serialised row
    (16 bytes at least, the overhead of one field), so benchmarks can vary row width alone.
    """
    check_rows(n)
    return _encode_dicts(_encode_parts(rng, n), padding_fields(extra_width))


def iter_encode_lines(rng: random.Random, n: int, *, extra_width: int = 0) -> Iterator[str]:
    """The rows of ``iter_encode_rows(rng, n)`` as ``json.dumps(row, ensure_ascii=False)`` text."""
    check_rows(n)
    return _encode_texts(_encode_parts(rng, n), padding_fields(extra_width))


def check_rows(n: int) -> None:
    """Refuse an encode row count too small to carry every quirk."""
    if n < MIN_ROWS:
        raise UsageError(f"rows must be at least {MIN_ROWS}, got {n}", fix=f"pass --rows {MIN_ROWS} or more")


def _encode_dicts(parts: Iterator[_EncodeParts], padding: JsonRow) -> Iterator[JsonRow]:
    first = True
    for run_id, timestamp, host, source, combo, crf, measures, score, ciede2000, cambi, tail in parts:
        row: JsonRow = {
            "schema_version": 3, "run_id": run_id, "timestamp": timestamp, **host.fields,
            **source.block.fields, **combo.head.fields,
            **crf.fields,
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
    for run_id, timestamp, host, source, combo, crf, measures, score, ciede2000, cambi, tail in parts:
        path, size, kbps, bpp, encode_ms, cpu_ms, fps, rss, score_ms = measures
        # Every value here is a safe ASCII string, an int or a finite float, whose JSON is
        # its str/repr (blocks, NaN crf included, come from the encoder); the tests check
        # each line against json.dumps of the same row.
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
