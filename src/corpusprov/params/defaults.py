"""Shipped defaults: the encode-grid row contract and the MOS row contracts (input and unified)."""

from __future__ import annotations

__all__ = [
    "ENCODE_GRID_REQUIRED_KEYS",
    "MERGE_DEDUP_KEY",
    "MOS_OPTIONAL_KEYS",
    "MOS_REQUIRED_KEYS",
    "UNIFIED_FIELDS",
]

#: The vmaf-tune row contract, schema version 3 (``vmaftune.CORPUS_ROW_KEYS``, in its order):
#: what ``merge_corpora.py`` requires of every row. The feature columns are in it because a
#: shard without them would pass and the trainer would then silently read zero features.
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
    "clip_mode",
    "hdr_transfer",
    "hdr_primaries",
    "hdr_forced",
    "shot_count",
    "shot_avg_duration_sec",
    "shot_duration_std_sec",
    "adm2_mean",
    "vif_scale0_mean",
    "vif_scale1_mean",
    "vif_scale2_mean",
    "vif_scale3_mean",
    "motion2_mean",
    "adm2_std",
    "vif_scale0_std",
    "vif_scale1_std",
    "vif_scale2_std",
    "vif_scale3_std",
    "motion2_std",
    "enc_internal_qp_mean",
    "enc_internal_qp_std",
    "enc_internal_bits_mean",
    "enc_internal_bits_std",
    "enc_internal_mv_mean",
    "enc_internal_mv_std",
    "enc_internal_itex_mean",
    "enc_internal_ptex_mean",
    "enc_internal_intra_ratio",
    "enc_internal_skip_ratio",
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

#: The unified row ``aggregate_corpora.py`` writes (``output_row: unified``), field by field:
#: ``(name, type, default)``. ``type`` is ``str``, ``int`` or ``float``; a default of ``None``
#: is filled in by the stage (``mos``, ``mos_native``, ``mos_native_scale`` and
#: ``corpus_source`` come from the scale map; ``corpus`` defaults to the resolved label).
#: The original's 18th field, ``aggregated_at_utc``, is left out on purpose: a wall-clock
#: field would make every run's bytes differ; the manifest's start time is that stamp.
UNIFIED_FIELDS: tuple[tuple[str, type, object], ...] = (
    ("src", str, ""),
    ("src_sha256", str, ""),
    ("width", int, 0),
    ("height", int, 0),
    ("framerate", float, 0.0),
    ("duration_s", float, 0.0),
    ("pix_fmt", str, ""),
    ("encoder_upstream", str, ""),
    ("mos", float, None),
    ("mos_native", float, None),
    ("mos_native_scale", str, None),
    ("mos_std_dev", float, 0.0),
    ("n_ratings", int, 0),
    ("corpus", str, None),
    ("corpus_source", str, None),
    ("corpus_version", str, ""),
    ("ingested_at_utc", str, ""),
)
