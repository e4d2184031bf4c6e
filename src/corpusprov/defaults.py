"""Shipped defaults: the encode-grid row contract and the MOS corpus labels."""

from __future__ import annotations

__all__ = [
    "ENCODE_GRID_REQUIRED_KEYS",
    "MERGE_DEDUP_KEY",
    "MOS_OPTIONAL_KEYS",
    "MOS_REQUIRED_KEYS",
]

#: The vmaf-tune Phase A row keys every encode-grid row must carry.
ENCODE_GRID_REQUIRED_KEYS: tuple[str, ...] = (
    "schema_version",
    "run_id",
    "timestamp",
    "src",
    "src_sha256",
    "width",
    "height",
    "pix_fmt",
    "framerate",
    "duration_s",
    "encoder",
    "encoder_version",
    "preset",
    "crf",
    "extra_params",
    "encode_path",
    "encode_size_bytes",
    "bitrate_kbps",
    "encode_time_ms",
    "vmaf_score",
    "vmaf_model",
    "score_time_ms",
    "ffmpeg_version",
    "vmaf_binary_version",
    "exit_status",
)

#: The natural key of an encode-grid row: one source, encoded one way.
MERGE_DEDUP_KEY: tuple[str, ...] = ("src_sha256", "encoder", "preset", "crf")

#: Keys every MOS-labelled row must carry.
MOS_REQUIRED_KEYS: tuple[str, ...] = ("src", "src_sha256", "mos", "corpus")

#: Keys a MOS-labelled row may carry (passed through to the unified row).
MOS_OPTIONAL_KEYS: tuple[str, ...] = (
    "src_size_bytes",
    "width",
    "height",
    "framerate",
    "duration_s",
    "pix_fmt",
    "encoder_upstream",
    "mos_std_dev",
    "n_ratings",
    "corpus_version",
    "ingested_at_utc",
)
