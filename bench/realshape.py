"""Shards shaped like real vmaf-tune and MOS-ingest output, for the bench's "real" cases.

The sample package writes rows that are kind to a parser (short floats, raw UTF-8, compact
enough). Production shards are not: vmaf-tune writes ``json.dumps(row, sort_keys=True)``
with the default ``", "`` / ``": "`` separators and ``os.linesep`` (CRLF on its Windows
hosts), floats with full ``repr`` precision (``0.00012457020440578858``, ``4.0116e-05``),
a bare ``NaN`` for an unavailable feature in about one row in three, ``\\uXXXX`` escapes for
non-ASCII paths (about one row in ten) and a list-valued ``extra_params``. This module
writes exactly that, in those proportions, with duplicate natural keys across shards
(~15%) and within a shard (~2%).
"""

# Randomness here shapes bench data, it protects nothing: seedable Mersenne Twister.

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ENCODE_V3_KEYS",
    "MOS_REAL_CORPORA",
    "NEWLINES",
    "encode_shard_plan",
    "iter_real_encode_rows",
    "iter_real_mos_rows",
    "mos_shard_plan",
]

#: The 54 keys of a vmaf-tune schema-v3 encode-grid row, in the contract's order.
ENCODE_V3_KEYS: tuple[str, ...] = (
    "schema_version", "run_id", "timestamp", "src", "src_sha256", "width", "height", "pix_fmt",
    "framerate", "duration_s", "encoder", "encoder_version", "preset", "crf", "extra_params",
    "encode_path", "encode_size_bytes", "bitrate_kbps", "encode_time_ms", "vmaf_score", "vmaf_model",
    "score_time_ms", "ffmpeg_version", "vmaf_binary_version", "exit_status", "clip_mode",
    "hdr_transfer", "hdr_primaries", "hdr_forced", "shot_count", "shot_avg_duration_sec",
    "shot_duration_std_sec", "adm2_mean", "vif_scale0_mean", "vif_scale1_mean", "vif_scale2_mean",
    "vif_scale3_mean", "motion2_mean", "adm2_std", "vif_scale0_std", "vif_scale1_std",
    "vif_scale2_std", "vif_scale3_std", "motion2_std", "enc_internal_qp_mean", "enc_internal_qp_std",
    "enc_internal_bits_mean", "enc_internal_bits_std", "enc_internal_mv_mean", "enc_internal_mv_std",
    "enc_internal_itex_mean", "enc_internal_ptex_mean", "enc_internal_intra_ratio",
    "enc_internal_skip_ratio",
)  # fmt: skip

#: Line ending per host: ``os.linesep`` of the machine that wrote the shard.
NEWLINES: dict[str, str] = {"grid-linux-a": "\n", "grid-linux-b": "\n", "grid-win-c": "\r\n", "grid-linux-d": "\n"}

# Feature fields an unavailable measurement leaves NaN (never a natural-key field).
_NAN_FIELDS = (
    "enc_internal_mv_mean",
    "enc_internal_mv_std",
    "enc_internal_itex_mean",
    "enc_internal_ptex_mean",
    "shot_duration_std_sec",
    "cambi_mean",
    "ciede2000_mean",
)
_TITLES = (
    "BigBuckBunny",
    "Sintel",
    "TearsOfSteel",
    "ElephantsDream",
    "CrowdRun",
    "ParkJoy",
    "DucksTakeOff",
    "OldTownCross",
    "Netflix_Aerial",
    "Netflix_Boat",
    "Meridian",
    "Jockey",
)
_NON_ASCII = ("東京_夜景", "Café_ñandú", "Zürich_Straßenbahn", "Москва_метро", "서울_야경")
_ENCODERS = (
    ("libx264", "0.164.3108", ("veryfast", "medium", "slow"), ["-x264-params", "aq-mode=3"]),
    ("libx265", "3.5+1-f0c1022b6", ("fast", "medium", "slow"), ["-x265-params", "aq-mode=2:psy-rd=1.0"]),
    ("libsvtav1", "1.7.0", (4, 6, 8), ["-svtav1-params", "tune=0:enable-qm=1"]),
    ("libvpx-vp9", "1.13.1", (2, 4, 5), ["-row-mt", "1", "-tile-columns", "2"]),
)
_CRFS = tuple(range(18, 48))
#: Grid cells per source: encoder x preset x crf.
_CELLS = len(_ENCODERS) * 3 * len(_CRFS)


def encode_shard_plan(rows: int) -> list[tuple[str, int]]:
    """Shard names and row counts: four hosts, one of them Windows (CRLF)."""
    hosts = list(NEWLINES)
    base = rows // len(hosts)
    sizes = [base] * len(hosts)
    sizes[0] += rows - base * len(hosts)
    return [(f"{host}.jsonl", size) for host, size in zip(hosts, sizes, strict=True)]


def _cell(index: int) -> tuple[int, int, int, int]:
    """Grid cell number -> (source, encoder, preset, crf) indices; sources vary fastest."""
    rest, source_low = divmod(index, 1000)
    source_high, rest = divmod(rest, _CELLS)
    source = source_high * 1000 + source_low
    encoder, rest = divmod(rest, 3 * len(_CRFS))
    preset, crf = divmod(rest, len(_CRFS))
    return source, encoder, preset, crf


def _source_name(source: int) -> str:
    # One source in ten has a non-ASCII name: json.dumps writes it as \\uXXXX escapes.
    if source % 10 == 3:
        return f"/corpus/{_NON_ASCII[source % len(_NON_ASCII)]}_{source}.yuv"
    return f"/corpus/{_TITLES[source % len(_TITLES)]}_{source}_1080p.yuv"


def _encode_row(rng: random.Random, cell: int, serial: int) -> dict[str, Any]:
    """One vmaf-tune schema-v3 row for grid ``cell``; ``serial`` makes run ids unique."""
    source, encoder_index, preset_index, crf_index = _cell(cell)
    encoder, version, presets, extra = _ENCODERS[encoder_index]
    preset = presets[preset_index]
    crf = _CRFS[crf_index]
    rand = rng.random
    src = _source_name(source)
    sha = hashlib.sha256(src.encode()).hexdigest()
    width, height = ((1920, 1080), (3840, 2160), (1280, 720))[source % 3]
    framerate = (24000 / 1001, 25.0, 30000 / 1001, 60.0)[source % 4]
    duration = 10.0 + (source % 7) * 1.001
    size_bytes = int(200_000 + 4_000_000 * rand() * (60 - crf) / 40)
    vmaf = 100.0 - crf * 1.3 - 8.0 * rand() + rand() * 1e-9
    row: dict[str, Any] = {
        "schema_version": 3, "run_id": f"run-{serial:09d}-{rng.getrandbits(32):08x}",
        "timestamp": f"2026-10-{1 + serial % 28:02d}T{serial % 24:02d}:{serial % 60:02d}:{(serial * 7) % 60:02d}Z",
        "src": src, "src_sha256": sha, "width": width, "height": height,
        "pix_fmt": "yuv420p10le" if source % 5 == 0 else "yuv420p", "framerate": framerate,
        "duration_s": duration, "encoder": encoder, "encoder_version": version, "preset": preset,
        "crf": crf,
        # Most rows carry the encoder's extra arguments as a list; a few ran with none.
        "extra_params": list(extra) if rand() < 0.9 else [],
        "encode_path": f"/enc/{sha[:8]}/{encoder}_{preset}_{crf}.mkv",
        "encode_size_bytes": size_bytes, "bitrate_kbps": size_bytes * 8 / duration / 1000,
        "encode_time_ms": 1000.0 * (5 + 60 * rand()), "vmaf_score": vmaf,
        "vmaf_model": "vmaf_4k_v0.6.1" if height == 2160 else "vmaf_v0.6.1",
        "score_time_ms": 2000.0 * (1 + rand()), "ffmpeg_version": "6.1.1",
        "vmaf_binary_version": "3.0.0", "exit_status": 0, "clip_mode": "full",
        "hdr_transfer": "smpte2084" if source % 5 == 0 else None,
        "hdr_primaries": "bt2020" if source % 5 == 0 else None, "hdr_forced": False,
        "shot_count": 1 + source % 9, "shot_avg_duration_sec": duration / (1 + source % 9),
        "shot_duration_std_sec": rand() * 2.0,
        "adm2_mean": 0.9 + 0.1 * rand(), "vif_scale0_mean": 0.5 + 0.4 * rand(),
        "vif_scale1_mean": 0.7 + 0.3 * rand(), "vif_scale2_mean": 0.8 + 0.2 * rand(),
        "vif_scale3_mean": 0.85 + 0.15 * rand(), "motion2_mean": 20.0 * rand(),
        # Standard deviations of near-constant features: positional floats of 20+ digits
        # (1e-4..1e-3) or exponent form below 1e-4, as repr writes them.
        "adm2_std": 1e-4 + 9e-4 * rand(), "vif_scale0_std": 1e-4 + 9e-4 * rand(),
        "vif_scale1_std": 1e-5 + 9e-5 * rand(), "vif_scale2_std": 1e-4 + 9e-4 * rand(),
        "vif_scale3_std": 1e-5 + 9e-5 * rand(), "motion2_std": 0.5 + 3.0 * rand(),
        "enc_internal_qp_mean": 20.0 + crf * 0.8 + rand(), "enc_internal_qp_std": 1e-4 + 9e-4 * rand(),
        "enc_internal_bits_mean": 1e4 * (1 + rand()), "enc_internal_bits_std": 1e-4 + 9e-4 * rand(),
        "enc_internal_mv_mean": 1e-4 + 9e-4 * rand(), "enc_internal_mv_std": 1e-5 + 9e-5 * rand(),
        "enc_internal_itex_mean": 1e-4 + 9e-4 * rand(), "enc_internal_ptex_mean": 1e-4 + 9e-4 * rand(),
        "enc_internal_intra_ratio": rand() * 0.2, "enc_internal_skip_ratio": rand() * 0.5,
        # A few keys beyond the contract, as newer vmaf-tune builds add them.
        "host_os": "windows" if serial % 4 == 2 else "linux", "cambi_mean": rand() * 2.0,
        "ciede2000_mean": 40.0 + 10.0 * rand(),
    }  # fmt: skip
    if rand() < 0.5:
        row["ms_ssim_mean"] = 0.95 + 0.05 * rand()
    if rand() < 1 / 3:
        row[_NAN_FIELDS[int(rand() * len(_NAN_FIELDS))]] = float("nan")
    return row


def iter_real_encode_rows(rng: random.Random, plan: list[tuple[str, int]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(shard_index, row)`` for every row of ``plan``, in order.

    About 2% of a shard's rows repeat a natural key seen earlier in the same shard and, from
    the second shard on, about 15% repeat one from an earlier shard (a re-run elsewhere).
    """
    earlier: list[int] = []  # cells written by earlier shards
    next_cell = serial = 0
    for shard_index, (_, size) in enumerate(plan):
        this_shard: list[int] = []
        for _ in range(size):
            draw = rng.random()
            if draw < 0.02 and this_shard:
                cell = this_shard[int(rng.random() * len(this_shard))]
            elif draw < 0.17 and earlier:
                cell = earlier[int(rng.random() * len(earlier))]
            else:
                cell = next_cell
                next_cell += 1
                this_shard.append(cell)
            serial += 1
            yield shard_index, _encode_row(rng, cell, serial)
        earlier.extend(this_shard)


#: MOS corpora of the real-shaped MOS case: label, min, max, higher is better, share of rows.
MOS_REAL_CORPORA: tuple[tuple[str, float, float, bool, float], ...] = (
    ("konvid-150k", 1.0, 5.0, True, 0.3), ("lsvq", 1.0, 5.0, True, 0.3),
    ("youtube-ugc", 1.0, 5.0, True, 0.15), ("live-vqc", 0.0, 100.0, True, 0.1),
    ("live-vqa", 0.0, 100.0, False, 0.15),
)  # fmt: skip


def mos_shard_plan(rows: int) -> list[tuple[str, int]]:
    """One shard per corpus, sized by its share; CRLF for none (the ingest runs on Linux)."""
    sizes = [int(rows * share) for *_, share in MOS_REAL_CORPORA]
    sizes[0] += rows - sum(sizes)
    return [(f"{corpus[0]}.jsonl", size) for corpus, size in zip(MOS_REAL_CORPORA, sizes, strict=True)]


def iter_real_mos_rows(rng: random.Random, plan: list[tuple[str, int]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(shard_index, row)``: full-precision MOS rows, ~5% of sources repeated in a later corpus."""
    earlier: list[str] = []
    serial = 0
    for shard_index, (_, size) in enumerate(plan):
        label, low, high, _, _ = MOS_REAL_CORPORA[shard_index]
        fresh: list[str] = []
        for _ in range(size):
            serial += 1
            rand = rng.random
            if earlier and rand() < 0.05:
                src = earlier[int(rand() * len(earlier))]
            else:
                src = (
                    f"{label}/{_NON_ASCII[serial % len(_NON_ASCII)]}_{serial}.mp4"
                    if serial % 10 == 3
                    else f"{label}/clip_{serial:08d}.mp4"
                )
                fresh.append(src)
            span = high - low
            std = span * (0.08 + 0.15 * rand())
            row: dict[str, Any] = {
                "src": src, "src_sha256": hashlib.sha256(src.encode()).hexdigest(),
                "mos": low + span * (0.1 + 0.8 * rand()), "corpus": label,
                "src_size_bytes": int(1e6 + 5e7 * rand()), "width": 1920, "height": 1080,
                "framerate": 30000 / 1001, "duration_s": 8.0 + 4.0 * rand(), "pix_fmt": "yuv420p",
                "mos_std_dev": std if rand() < 2 / 3 else float("nan"),
                "n_ratings": 20 + int(rand() * 100), "corpus_version": "2024.1",
                "ingested_at_utc": f"2026-09-{1 + serial % 28:02d}T12:00:00Z",
            }  # fmt: skip
            yield shard_index, row
        earlier.extend(fresh)


def dump_line(row: dict[str, Any], newline: str) -> str:
    """What the writers do: ``json.dumps(row, sort_keys=True)`` (default separators, ASCII) + newline."""
    return json.dumps(row, sort_keys=True) + newline
