"""Benchmark corpora: encode-grid and MOS shards from the sample package's fast line iterators.

Each corpus is a folder of ``*.jsonl`` shards split the way ``corpusprov sample`` splits them
(three encode hosts; one file per MOS corpus), plus a hidden marker that lets ``--keep-data``
reuse a folder only when the same rows, seed, padding and generator code made it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import corpusprov.sample
import realshape
from corpusprov.sample import ENCODE_HOSTS, MOS_CORPORA, iter_encode_lines, iter_mos_lines
from corpusprov.sample.encode import shard_sizes
from corpusprov.sample.mos import mos_file_sizes

__all__ = [
    "Corpus",
    "encode_corpus",
    "mos_corpus",
    "native_path_share",
    "real_encode_corpus",
    "real_mos_corpus",
    "slow_path_share",
]

_MARKER = ".bench-corpus.json"
_BATCH_ROWS = 4096


@dataclass(frozen=True)
class Corpus:
    """One generated corpus folder."""

    kind: str
    """``encode`` or ``mos``."""
    folder: Path
    """The folder of shards (what the stages are given)."""
    rows: int
    """Lines over all shards."""
    bytes: int
    """Bytes over all shards."""
    extra_width: int
    """Padding bytes added to every row."""
    files: tuple[str, ...]
    """Shard names, sorted."""
    generate_s: float | None
    """Seconds spent generating it (``None`` when a kept folder was reused)."""


def _generator_fingerprint() -> str:
    """sha256 of the sample generator's source: a changed generator means new data."""
    digest = hashlib.sha256()
    package = Path(corpusprov.sample.__file__).parent
    for path in [*sorted(package.glob("*.py")), Path(realshape.__file__)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _write_lines(path: Path, lines: Iterator[str], count: int) -> int:
    """Write the next ``count`` lines of ``lines`` to ``path``; return the bytes written."""
    written = 0
    size = 0
    with open(path, "wb") as handle:
        while written < count:
            batch = list(itertools.islice(lines, min(_BATCH_ROWS, count - written)))
            if not batch:
                break
            batch.append("")
            data = "\n".join(batch).encode("utf-8")
            handle.write(data)
            size += len(data)
            written += len(batch) - 1
    if written != count:
        raise RuntimeError(f"{path}: the generator gave {written} rows, {count} were asked for")
    return size


def _reuse(folder: Path, wanted: dict[str, object]) -> Corpus | None:
    """The corpus already in ``folder`` if its marker matches ``wanted`` and its files are whole."""
    marker = folder / _MARKER
    if not marker.is_file():
        return None
    recorded = json.loads(marker.read_text(encoding="utf-8"))
    if recorded.get("wanted") != wanted:
        return None
    sizes: dict[str, int] = recorded["sizes"]
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return None
    return Corpus(
        str(wanted["kind"]),
        folder,
        int(str(wanted["rows"])),
        sum(sizes.values()),
        int(str(wanted["extra_width"])),
        tuple(sorted(sizes)),
        None,
    )


def _finish(folder: Path, wanted: dict[str, object], rows: int, sizes: dict[str, int], started: float) -> Corpus:
    """Write the folder's marker (what was asked for, the sizes written) and describe the corpus."""
    (folder / _MARKER).write_text(json.dumps({"wanted": wanted, "sizes": sizes}), encoding="utf-8")
    return Corpus(
        str(wanted["kind"]),
        folder,
        rows,
        sum(sizes.values()),
        int(str(wanted["extra_width"])),
        tuple(sorted(sizes)),
        time.perf_counter() - started,
    )


def _generate(folder: Path, wanted: dict[str, object], shards: list[tuple[str, int]], lines: Iterator[str]) -> Corpus:
    """Write ``shards`` (name, rows) from ``lines`` into a fresh ``folder``, then its marker."""
    started = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sizes = {name: _write_lines(folder / name, lines, rows) for name, rows in shards}
    return _finish(folder, wanted, sum(rows for _, rows in shards), sizes, started)


def encode_corpus(root: Path, rows: int, seed: int) -> Corpus:
    """``rows`` encode-grid rows over three host shards, under ``root``."""
    wanted: dict[str, object] = {
        "kind": "encode",
        "rows": rows,
        "seed": seed,
        "extra_width": 0,
        "generator": _generator_fingerprint(),
    }
    folder = root / f"encode-{rows}-seed{seed}"
    kept = _reuse(folder, wanted)
    if kept is not None:
        return kept
    lines = iter_encode_lines(random.Random(seed), rows)
    shards = [(f"{host}.jsonl", size) for host, size in zip(ENCODE_HOSTS, shard_sizes(rows), strict=True)]
    return _generate(folder, wanted, shards, lines)


def mos_corpus(root: Path, rows: int, seed: int, extra_width: int = 0) -> Corpus:
    """``rows`` MOS rows over the sample's corpus files; the same seed gives the same rows at any width."""
    wanted: dict[str, object] = {
        "kind": "mos",
        "rows": rows,
        "seed": seed,
        "extra_width": extra_width,
        "generator": _generator_fingerprint(),
    }
    folder = root / f"mos-{rows}-seed{seed}-pad{extra_width}"
    kept = _reuse(folder, wanted)
    if kept is not None:
        return kept
    lines = iter_mos_lines(random.Random(seed), rows, extra_width=extra_width)
    shards = [(f"{label}.jsonl", size) for label, size in zip(MOS_CORPORA, mos_file_sizes(rows), strict=True)]
    return _generate(folder, wanted, shards, lines)


def _generate_real(
    folder: Path,
    wanted: dict[str, object],
    plan: list[tuple[str, int]],
    rows: Iterator[tuple[int, dict[str, object]]],
    newlines: dict[str, str],
) -> Corpus:
    """Write real-shaped rows as their writers do: ``json.dumps(sort_keys=True)`` + the host's newline."""
    started = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    handles = [open(folder / name, "wb") for name, _ in plan]  # noqa: SIM115 -- closed below
    buffers: list[list[str]] = [[] for _ in plan]
    try:
        for shard, row in rows:
            newline = newlines.get(plan[shard][0].removesuffix(".jsonl"), "\n")
            buffers[shard].append(realshape.dump_line(row, newline))
            if len(buffers[shard]) >= _BATCH_ROWS:
                handles[shard].write("".join(buffers[shard]).encode("ascii"))
                buffers[shard].clear()
        for handle, buffer in zip(handles, buffers, strict=True):
            handle.write("".join(buffer).encode("ascii"))
    finally:
        for handle in handles:
            handle.close()
    sizes = {name: (folder / name).stat().st_size for name, _ in plan}
    return _finish(folder, wanted, sum(rows for _, rows in plan), sizes, started)


def real_encode_corpus(root: Path, rows: int, seed: int) -> Corpus:
    """``rows`` real-shaped encode-grid rows over four host shards (one CRLF), under ``root``."""
    wanted: dict[str, object] = {
        "kind": "encode-real",
        "rows": rows,
        "seed": seed,
        "extra_width": 0,
        "generator": _generator_fingerprint(),
    }
    folder = root / f"encode-real-{rows}-seed{seed}"
    kept = _reuse(folder, wanted)
    if kept is not None:
        return kept
    plan = realshape.encode_shard_plan(rows)
    return _generate_real(
        folder, wanted, plan, realshape.iter_real_encode_rows(random.Random(seed), plan), realshape.NEWLINES
    )


def real_mos_corpus(root: Path, rows: int, seed: int, extra_width: int = 0) -> Corpus:
    """``rows`` real-shaped MOS rows, one shard per corpus; ``extra_width`` pads every row."""
    wanted: dict[str, object] = {
        "kind": "mos-real",
        "rows": rows,
        "seed": seed,
        "extra_width": extra_width,
        "generator": _generator_fingerprint(),
    }
    folder = root / f"mos-real-{rows}-seed{seed}-pad{extra_width}"
    kept = _reuse(folder, wanted)
    if kept is not None:
        return kept
    plan = realshape.mos_shard_plan(rows)
    padding = {"x_pad": "x" * max(0, extra_width - 13)} if extra_width else {}  # ', "x_pad": ""' is 13 bytes
    rows_iter = ((shard, {**row, **padding}) for shard, row in realshape.iter_real_mos_rows(random.Random(seed), plan))
    return _generate_real(folder, wanted, plan, rows_iter, {})


def slow_path_share(corpus: Corpus, sample_lines: int = 60_000) -> tuple[float | None, int]:
    """Fraction of lines the parser sends down its careful path, over the first lines of each shard.

    Measured outside the timed runs with the parser's own probe (``fast_path_takes``), so the
    hot loop carries no counter. ``None`` for a corpusprov build without the probe.
    """
    try:
        from corpusprov.io.rowparse import fast_path_takes  # the package the stage runs, as installed
    except ImportError:
        return None, 0
    # merge writes rows as it read them, so it asks the parser for the line too (aggregate does not).
    write = corpus.kind.startswith("encode")
    per_shard = max(1, sample_lines // max(1, len(corpus.files)))
    seen = slow = 0
    for name in corpus.files:
        with open(corpus.folder / name, "rb") as handle:
            for line in itertools.islice(handle, per_shard):
                raw = line.rstrip(b"\n").removesuffix(b"\r")
                if not raw.strip():
                    continue
                seen += 1
                slow += not fast_path_takes(raw, write=write)
    return (slow / seen if seen else 0.0), seen


def native_path_share(corpus: Corpus, params: Path, sample_lines: int = 60_000) -> float | None:
    """Fraction of a corpus's lines its stage's native fast path answers for, over the same sample
    as :func:`slow_path_share` (``None`` for a corpusprov build without it)."""
    try:
        from corpusprov.params.load import load_params
        from corpusprov.params.scales import aggregate_params
        from corpusprov.params.stages import merge_params
        from corpusprov.stages.aggregate import native_prepass as aggregate_prepass
        from corpusprov.stages.merge import native_prepass as merge_prepass
        from corpusprov.stages.rowpolicy import Prepass
    except ImportError:
        return None
    loaded = load_params(params, params.name, required=True)
    prepass: Prepass | None
    if corpus.kind.startswith("encode"):
        prepass = merge_prepass(merge_params(loaded))
    else:
        rows = aggregate_prepass(aggregate_params(loaded))
        prepass = None if rows is None else lambda lines: rows(lines, None)
    if prepass is None:
        return 0.0
    per_shard = max(1, sample_lines // max(1, len(corpus.files)))
    lines: list[bytes] = []
    for name in corpus.files:
        with open(corpus.folder / name, "rb") as handle:
            lines.extend(line.rstrip(b"\n") for line in itertools.islice(handle, per_shard))
    lines = [line for line in lines if line.strip()]
    if not lines:
        return 0.0
    answered = prepass(lines)[0]
    return sum(answered) / len(lines)
