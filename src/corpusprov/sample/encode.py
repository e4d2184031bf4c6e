"""Encode-grid sample rows: three host shards with cross-shard repeats, float crf, NaN features, a failed probe."""

# Randomness here shapes sample data, it protects nothing: the non-crypto Mersenne Twister
# is the point (seedable, reproducible), hence the S311 waiver below.

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from typing import NamedTuple

from corpusprov.errors import UsageError
from corpusprov.params.defaults import ENCODE_GRID_REQUIRED_KEYS
from corpusprov.sample._common import JsonRow, iso_utc, padding_fields, spread_positions
from corpusprov.sample.catalog import (
    CELLS_PER_SOURCE,
    COMBOS,
    MEASURE_KEYS,
    NAN_CAMBI,
    NAN_CIEDE,
    NAN_CRF,
    TAILS,
    TITLES,
    Block,
    Combo,
    Score,
    Source,
    build_scores,
    build_source,
    make_block,
)

__all__ = ["ENCODE_HOSTS", "MIN_ROWS", "check_rows", "iter_encode_lines", "iter_encode_rows", "shard_sizes"]

#: Fewer encode rows than this cannot carry every quirk (3 shards, cross-shard duplicates).
MIN_ROWS = 10
#: The machines the encode-grid shards come from, one shard file each.
ENCODE_HOSTS: tuple[str, ...] = ("grid-host-a", "grid-host-b", "grid-host-c")


class _EncodeParts(NamedTuple):
    run_id: str
    timestamp: str
    host: Block
    source: Source
    combo: Combo
    crf: Block  # the combo's int or float form, or the failed probe's NaN
    measures: tuple[str, int, float, float, int, int, float, float, int]
    score: Score
    ciede2000: Block
    cambi: Block
    tail: Block


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
    source_count = max(len(TITLES), math.ceil(unique_keys / CELLS_PER_SOURCE))
    sources = [build_source(rng, index) for index in range(source_count)]
    # Pools fill lazily from their own stream, so which buckets a run needs does not
    # shift the row stream.
    pool_rng = random.Random(rng.getrandbits(64))  # noqa: S311
    score_pools: dict[int, list[Score]] = {}
    combo_count = len(COMBOS)
    randrange, rand, getrandbits = rng.randrange, rng.random, rng.getrandbits

    fresh_keys = 0
    row_number = 0
    float_crf_shown = False
    for host_name, size, plan in zip(ENCODE_HOSTS, sizes, plans, strict=True):
        shard_start = fresh_keys
        threads = rng.choice((8, 16, 32))
        host = make_block({"host": host_name, "threads": threads})
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
            # Distinct cells per source while key_index // source_count < len(COMBOS).
            combo = COMBOS[(key_index // source_count + source_index * 97) % combo_count]
            failed_probe = kind == "failed_probe"
            crf = NAN_CRF if failed_probe else combo.crf_float if crf_as_float else combo.crf_int

            vmaf = 98.5 - source.complexity * combo.quality_drop + 3.0 * (rand() - 0.5)
            bucket = min(399, max(0, int(vmaf * 4.0)))
            pool = score_pools.get(bucket)
            if pool is None:
                pool = score_pools[bucket] = build_scores(pool_rng, bucket)
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
                ciede2000=NAN_CIEDE if nan_ciede2000 else score.ciede2000,
                cambi=NAN_CAMBI if nan_cambi else score.cambi,
                tail=TAILS[1] if rand() < 0.01 else TAILS[0],
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
            **combo.tail.fields, **dict(zip(MEASURE_KEYS, measures, strict=True)),
            **score.block.fields, **ciede2000.fields, **cambi.fields, **tail.fields, **padding,
        }  # fmt: skip
        if first:
            _check_required(row)
            first = False
        yield row


def _encode_texts(parts: Iterator[_EncodeParts], padding: JsonRow) -> Iterator[str]:
    pad = f", {make_block(padding).text}" if padding else ""
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
