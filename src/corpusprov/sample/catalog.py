"""The encode-grid sample's building blocks: sources, encoder/preset/crf combos, scores and features."""

# Randomness here shapes sample data, it protects nothing: the non-crypto Mersenne Twister
# is the point (seedable, reproducible).

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from corpusprov.sample._common import ENCODER, NAN, JsonRow, sha256_of


@dataclass(frozen=True, slots=True)
class Block:
    """Fields that travel together, with their serialised form inside an object."""

    fields: JsonRow
    text: str


def make_block(fields: JsonRow) -> Block:
    # A row serialises as "{" + ", ".join('"key": value') + "}", so the inner texts of
    # sub-objects joined with ", " are byte for byte what json.dumps gives for the whole row.
    # Precomputing them is what makes a million rows cheap: float repr costs ~0.4 µs each.
    return Block(fields, ENCODER.encode(fields)[1:-1])


@dataclass(frozen=True, slots=True)
class Source:
    block: Block
    sha_prefix: str
    complexity: float
    kbps_base: float
    megapixel_frames: float
    pixel_rate: float
    n_frames: int
    duration_s: float
    rss_base: float


@dataclass(frozen=True, slots=True)
class Combo:
    head: Block  # encoder, encoder_version, preset
    crf_int: Block
    crf_float: Block
    tail: Block  # rc_mode ... container
    path_stem: str
    quality_drop: float
    kbps_factor: float
    ms_per_megapixel: float


@dataclass(frozen=True, slots=True)
class Score:
    block: Block  # vmaf_score ... ms_ssim
    ciede2000: Block
    cambi: Block


TITLES = (
    "BigBuckBunny", "Sintel", "Café_ñandú", "TearsOfSteel", "ElephantsDream", "CrowdRun",
    "東京_夜景", "ParkJoy", "DucksTakeOff", "OldTownCross", "InToTree", "Zürich_Straßenbahn",
    "Netflix_Aerial", "Netflix_Boat", "Netflix_FoodMarket", "Москва_метро", "Netflix_Narrator",
    "Meridian", "Cosmos_Laundromat", "São_Paulo_chuva", "Jockey", "Beauty", "HoneyBee",
    "ShakeNDry",
)  # fmt: skip
RESOLUTIONS = ((1920, 1080), (1280, 720), (3840, 2160), (2560, 1440), (854, 480))
RESOLUTION_WEIGHTS = (5, 3, 2, 1, 1)
FRAMERATES = (24.0, 25.0, 29.97, 30.0, 50.0, 60.0)

# encoder, version, presets, crf range, container, bitrate efficiency, reference crf,
# encode ms per megapixel for each preset
ENCODERS: tuple[tuple[str, str, tuple[int | str, ...], range, str, float, int,
                       tuple[float, ...]], ...] = (
    ("libx264", "0.164.3108", ("veryfast", "medium", "slow"), range(18, 41), "mp4", 1.0, 23,
     (0.9, 2.6, 5.8)),
    ("libx265", "3.5+1-f0c1022b6", ("veryfast", "medium", "slow"), range(18, 41), "mp4", 0.7, 23,
     (3.1, 8.4, 19.0)),
    ("libsvtav1", "1.7.0", (4, 6, 8), range(20, 56), "mkv", 0.6, 35, (21.0, 8.5, 3.2)),
    ("libaom-av1", "3.8.0", (4, 6, 8), range(20, 56), "mkv", 0.58, 35, (64.0, 22.0, 9.0)),
    ("libvpx-vp9", "1.13.1", (2, 4, 5), range(20, 56), "webm", 0.75, 33, (31.0, 12.0, 6.5)),
)  # fmt: skip


def extra_params(encoder: str, preset: int | str, keyint: int, bframes: int) -> str:
    if encoder.startswith("libx26"):
        return f"-g {keyint} -bf {bframes}"
    if encoder == "libsvtav1":
        return f"-svtav1-params tune=0:keyint={keyint}"
    if encoder == "libaom-av1":
        return f"-cpu-used {preset} -row-mt 1 -g {keyint}"
    return f"-b:v 0 -row-mt 1 -tile-columns 2 -g {keyint}"


def build_combos() -> tuple[Combo, ...]:
    combos: list[Combo] = []
    for encoder, version, presets, crfs, container, efficiency, crf_ref, speeds in ENCODERS:
        for rank, (preset, ms_per_megapixel) in enumerate(zip(presets, speeds, strict=True)):
            bframes = 3 if encoder.startswith("libx26") else 0
            tune = "vq" if encoder == "libsvtav1" else "psnr" if rank == 0 else None
            tail = make_block({
                "rc_mode": "crf", "pass_count": 1, "tune": tune, "keyint": 240,
                "bframes": bframes, "extra_params": extra_params(encoder, preset, 240, bframes),
                "container": container,
            })  # fmt: skip
            head = make_block({"encoder": encoder, "encoder_version": version, "preset": preset})
            for crf in crfs:
                position = (crf - crfs.start) / (crfs.stop - 1 - crfs.start)
                combos.append(Combo(
                    head=head, crf_int=make_block({"crf": crf}),
                    crf_float=make_block({"crf": float(crf)}), tail=tail,
                    path_stem=f"{encoder}_{preset}_crf{crf}.{container}",
                    # Slower presets buy a little quality at the same crf.
                    quality_drop=4.0 + 55.0 * position**1.4 - 0.8 * rank,
                    kbps_factor=efficiency * 2.0 ** ((crf_ref - crf) / 6.0),
                    ms_per_megapixel=ms_per_megapixel,
                ))  # fmt: skip
    return tuple(combos)


COMBOS = build_combos()
#: Each source covers at most this many grid cells, so the grid has many sources.
CELLS_PER_SOURCE = 120
#: Score blocks are drawn from pools: this many per quarter-point of VMAF.
SCORE_VARIANTS = 16
NAN_CIEDE = make_block({"ciede2000": NAN})
NAN_CAMBI = make_block({"cambi": NAN})
NAN_CRF = make_block({"crf": NAN})
TAILS = tuple(
    make_block({"ffmpeg_version": "6.1.1", "vmaf_binary_version": "3.0.0", "attempt": attempt, "exit_status": 0})
    for attempt in (1, 2)
)
MEASURE_KEYS = (
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


def build_source(rng: random.Random, index: int) -> Source:
    title = TITLES[index % len(TITLES)]
    variant = index // len(TITLES)
    width, height = rng.choices(RESOLUTIONS, RESOLUTION_WEIGHTS)[0]
    framerate = rng.choice(FRAMERATES)
    stem = f"{title}_{height}p{round(framerate)}"
    name = f"{stem}.y4m" if variant == 0 else f"{stem}_v{variant:03d}.y4m"
    sha256 = sha256_of(name)
    duration = rng.choice((5.0, 10.0, 10.0, 20.0))
    n_frames = round(duration * framerate)
    complexity = 0.6 + 0.8 * rng.random()
    ti = round(5.0 + 30.0 * complexity * rng.random(), 3)
    pix_fmt = "yuv420p10le" if rng.random() < 0.2 else "yuv420p"
    megapixels = width * height / 1e6
    block = make_block({
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
    return Source(
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


def build_scores(rng: random.Random, bucket: int) -> list[Score]:
    """Score blocks for a VMAF in ``[bucket / 4, (bucket + 1) / 4)``, features consistent with it."""
    scores: list[Score] = []
    for _ in range(SCORE_VARIANTS):
        rand = rng.random
        vmaf = min(100.0, round((bucket + rand()) / 4.0, 4))
        unit = vmaf / 100.0
        spread = (1.0 - unit) * 12.0 + 1.0
        block = make_block({
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
            **features(rand, unit),
        })  # fmt: skip
        scores.append(Score(
            block=block, ciede2000=make_block({"ciede2000": round(27.0 + 18.0 * unit + rand(), 4)}),
            cambi=make_block({"cambi": round(max(0.0, 3.5 * (1.0 - unit) * rand()), 4)}),
        ))  # fmt: skip
    return scores


def features(rand: Callable[[], float], unit: float) -> JsonRow:
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
