"""Deterministic synthetic corpora: encode-grid shards and MOS corpora with real-world quirks."""

# Randomness here shapes sample data, it protects nothing: the non-crypto Mersenne Twister
# is the point (seedable, reproducible), hence the S311 waivers below.

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from corpusprov.errors import UsageError
from corpusprov.io.fsutil import atomic_writer
from corpusprov.sample.encode import (
    ENCODE_HOSTS,
    MIN_ROWS,
    check_rows,
    iter_encode_lines,
    iter_encode_rows,
    shard_sizes,
)
from corpusprov.sample.mos import MIN_MOS_ROWS, MOS_CORPORA, iter_mos_lines, iter_mos_rows, mos_file_sizes

__all__ = [
    "ENCODE_HOSTS",
    "MIN_MOS_ROWS",
    "MIN_ROWS",
    "MOS_CORPORA",
    "WINDOWS_HOST",
    "SampleFile",
    "SampleResult",
    "generate_samples",
    "iter_encode_lines",
    "iter_encode_rows",
    "iter_mos_lines",
    "iter_mos_rows",
]

_WRITE_BATCH_ROWS = 4096


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


#: The encode host whose shard ends its lines in CRLF: vmaf-tune writes ``os.linesep``, and
#: grid farms have Windows hosts.
WINDOWS_HOST: Final = "grid-host-c"


def _write_lines(path: Path, lines: Iterator[str], count: int, newline: str = "\n") -> int:
    """Write the next ``count`` lines of ``lines`` to ``path`` atomically, in large chunks."""
    written = 0
    with atomic_writer(path) as handle:
        while written < count:
            batch = list(itertools.islice(lines, min(_WRITE_BATCH_ROWS, count - written)))
            if not batch:
                break
            batch.append("")
            handle.write(newline.join(batch).encode("utf-8"))
            written += len(batch) - 1
    return written


def generate_samples(
    out_dir: Path, *, seed: int = 0, rows: int = 600, mos_rows: int | None = None, extra_width: int = 0
) -> SampleResult:
    """Write ``out_dir/encode/grid-host-*.jsonl`` and ``out_dir/mos/<corpus>.jsonl``.

    The ``WINDOWS_HOST`` shard ends its lines in CRLF, as vmaf-tune writes on Windows.
    ``rows`` encode rows in total over three shards; ``mos_rows`` (default about 2/3 of
    ``rows``, at least ``MIN_MOS_ROWS``) over the MOS corpora. The same arguments always
    give byte-identical files. Other files in ``out_dir`` are left alone.
    """
    if isinstance(seed, bool) or seed < 0:
        raise UsageError(
            f"seed must be a non-negative integer, got {seed}", fix="pass --seed 0 or another non-negative integer"
        )
    check_rows(rows)
    mos_total = max(MIN_MOS_ROWS, round(rows * 2 / 3)) if mos_rows is None else mos_rows
    master = random.Random(seed)  # noqa: S311 - reproducible sample data, not secrets
    # Separate streams: the encode shards do not depend on how many MOS rows are asked for.
    encode_rng = random.Random(master.getrandbits(64))  # noqa: S311
    mos_rng = random.Random(master.getrandbits(64))  # noqa: S311
    # Both streams are created (and so validated) before the first file is written.
    encode_lines = iter_encode_lines(encode_rng, rows, extra_width=extra_width)
    mos_lines = iter_mos_lines(mos_rng, mos_total, extra_width=extra_width)

    files: list[SampleFile] = []
    for host, size in zip(ENCODE_HOSTS, shard_sizes(rows), strict=True):
        path = out_dir / "encode" / f"{host}.jsonl"
        newline = "\r\n" if host == WINDOWS_HOST else "\n"
        files.append(SampleFile(path, "encode", _write_lines(path, encode_lines, size, newline)))
    for label, size in zip(MOS_CORPORA, mos_file_sizes(mos_total), strict=True):
        path = out_dir / "mos" / f"{label}.jsonl"
        files.append(SampleFile(path, "mos", _write_lines(path, mos_lines, size)))
    return SampleResult(tuple(files))
