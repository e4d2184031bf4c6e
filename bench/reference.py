"""The reference: merge and aggregate written the way such scripts usually are, to measure ours against.

The original scripts' semantics under the default params (merge: required keys, natural-key
dedup with 23 == 23.0, first seen wins; aggregate: the original's label rule, affine map,
17-field row and current-winner resolver, sorted output), built from the usual parts: stdlib ``json.loads`` per
line (which accepts bare ``NaN``), a Python ``set`` of natural-key tuples, every kept row
held in memory (aggregate: the winners in a dict), ``json.dumps(row, sort_keys=True)`` at
the end, as the original ``merge_corpora.py`` / ``aggregate_corpora.py`` do. No hashing, no
manifest, no fsync. It is not byte-identical to ours (separators, escapes and float format
differ); the bench only checks that it keeps the same number of rows.

    python bench/reference.py merge INPUT... --output OUT --params PARAMS
    python bench/reference.py aggregate INPUT... --output OUT --params PARAMS

Prints one JSON object of counters on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from shards import input_files


class ReferenceError(Exception):
    """A row the default policy (``on_invalid_row: fail``) refuses: the run stops."""


class NonFiniteKeyError(ValueError):
    """A natural-key field holds NaN or an infinity."""


def read_rows(path: Path, required: list[str]) -> Any:
    """Yield ``(line_number, row)`` for every line, failing on invalid JSON or a missing key."""
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue  # the original scripts skip blank lines (text mode already folds CRLF)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReferenceError(f"{path}:{line_no}: invalid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise ReferenceError(f"{path}:{line_no}: not a JSON object")
            missing = [name for name in required if name not in row]
            if missing:
                raise ReferenceError(f"{path}:{line_no}: missing required keys {missing}")
            yield line_no, row


def key_value(value: Any) -> tuple[str, Any]:
    """One natural-key part, tagged so a string never equals a number and ``true`` never equals 1.

    Python already compares ``23 == 23.0`` (and hashes them alike), so numbers need no
    further normalising; NaN would never equal itself, so it is refused.
    """
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise NonFiniteKeyError(value)
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return ("j", json.dumps(value, sort_keys=True))


def natural_key(row: dict[str, Any], fields: list[str]) -> tuple[tuple[str, Any], ...]:
    """The row's natural key as a tuple of tagged values."""
    return tuple(key_value(row[name]) for name in fields)


def dump(row: Any) -> str:
    """JSON text of one row, as the original scripts write it: ``json.dumps(row, sort_keys=True)``."""
    return json.dumps(row, sort_keys=True)


def write_jsonl(path: Path, rows: Any) -> int:
    """Write rows one per line; return how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(dump(row))
            handle.write("\n")
            count += 1
    return count


def rejects_path(output: Path) -> Path:
    """Where rejected rows go, next to the output."""
    stem = output.name.removesuffix(".jsonl")
    return output.with_name(stem + ".rejects.jsonl")


def merge(files: list[Path], params: dict[str, Any], output: Path) -> dict[str, Any]:
    """Validate and de-duplicate encode-grid rows; first occurrence of a natural key wins."""
    required = list(params["required_keys"])
    fields = list(params["dedup"]["key"])
    if params["dedup"].get("keep", "first") != "first" or params.get("non_finite", "keep") != "keep":
        raise ReferenceError("the reference implements keep: first and non_finite: keep only")
    seen: set[tuple[tuple[str, Any], ...]] = set()
    kept: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    rows_in = duplicates = 0
    for path in files:
        for line_no, row in read_rows(path, required):
            rows_in += 1
            try:
                key = natural_key(row, fields)
            except NonFiniteKeyError:
                rejects.append({"reason": "non_finite_key", "path": str(path), "line": line_no, "row": row})
                continue
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            kept.append(row)
    rows_out = write_jsonl(output, kept)
    write_jsonl(rejects_path(output), rejects)
    return {"rows_in": rows_in, "rows_out": rows_out, "duplicates": duplicates, "rejected": len(rejects)}


def scale_map(scale: dict[str, Any]) -> tuple[float, float]:
    """``(slope, intercept)`` of the affine map onto 0-100, as ``aggregate_corpora.py`` tabulates it."""
    span = float(scale["max"]) - float(scale["min"])
    if scale["higher_is_better"]:
        return 100.0 / span, -float(scale["min"]) * 100.0 / span
    return -100.0 / span, float(scale["max"]) * 100.0 / span


def uncertainty(row: dict[str, Any]) -> float:
    """The original's resolver input: a positive finite std-dev, else infinity (loses)."""
    try:
        value = float(row.get("mos_std_dev", 0.0))
    except (TypeError, ValueError):
        return math.inf
    return value if math.isfinite(value) and value > 0.0 else math.inf


def transform(row: dict[str, Any], label: str, scale: dict[str, Any], native: float) -> dict[str, Any]:
    """The original's unified row (its ``aggregated_at_utc`` aside, which corpusprov leaves out)."""
    slope, intercept = scale_map(scale)
    return {
        "src": row.get("src", "") or "",
        "src_sha256": row.get("src_sha256", "") or "",
        "width": int(row.get("width", 0) or 0),
        "height": int(row.get("height", 0) or 0),
        "framerate": float(row.get("framerate", 0.0) or 0.0),
        "duration_s": float(row.get("duration_s", 0.0) or 0.0),
        "pix_fmt": str(row.get("pix_fmt", "") or ""),
        "encoder_upstream": str(row.get("encoder_upstream", "") or ""),
        "mos": slope * native + intercept,
        "mos_native": native,
        "mos_native_scale": str(scale["label"]),
        "mos_std_dev": float(row.get("mos_std_dev", 0.0) or 0.0),
        "n_ratings": int(row.get("n_ratings", 0) or 0),
        "corpus": str(row.get("corpus") or label),
        "corpus_source": label,
        "corpus_version": str(row.get("corpus_version", "") or ""),
        "ingested_at_utc": str(row.get("ingested_at_utc", "") or ""),
    }


def aggregate(files: list[Path], params: dict[str, Any], output: Path) -> dict[str, Any]:
    """aggregate_corpora.py's rules: label, affine map, current-winner resolver, winners in a dict."""
    required = list(params["required_keys"])
    scales: dict[str, Any] = params["scales"]
    slack = float(params.get("range_slack", 0.05))
    if params.get("overrides") or params.get("dedup", {}).get("std_dev_units", "native") != "native":
        raise ReferenceError("the reference implements the original's defaults only")
    winners: dict[str, dict[str, Any]] = {}
    rejects: list[dict[str, Any]] = []
    rows_in = duplicates = 0
    for path in files:
        for line_no, row in read_rows(path, required):
            rows_in += 1
            label = row.get("corpus_source") or row.get("corpus")
            if not isinstance(label, str) or label not in scales:
                rejects.append({"reason": "unknown_corpus", "path": str(path), "line": line_no, "row": row})
                continue
            scale = scales[label]
            try:
                native = float(row["mos"])
            except (TypeError, ValueError):
                raise ReferenceError(f"{path}:{line_no}: mos {row['mos']!r} is not a number") from None
            if not (math.isfinite(native) and scale["min"] - slack <= native <= scale["max"] + slack):
                rejects.append({"reason": "bad_scale", "path": str(path), "line": line_no, "row": row})
                continue
            converted = transform(row, label, scale, native)
            sha = converted["src_sha256"]
            key = sha if isinstance(sha, str) and sha else f"__nokey__/{converted['src']}/{label}"
            existing = winners.get(key)
            if existing is None:
                winners[key] = converted
                continue
            duplicates += 1
            if existing["corpus_source"] != label and uncertainty(converted) < uncertainty(existing):
                winners[key] = converted
    ordered = sorted(winners, key=lambda key: (winners[key]["corpus_source"], winners[key]["src_sha256"], key))
    rows_out = write_jsonl(output, (winners[key] for key in ordered))
    write_jsonl(rejects_path(output), rejects)
    by_corpus: dict[str, int] = {}
    for row in winners.values():
        by_corpus[row["corpus_source"]] = by_corpus.get(row["corpus_source"], 0) + 1
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "duplicates": duplicates,
        "rejected": len(rejects),
        "rows_by_corpus": dict(sorted(by_corpus.items())),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run one stage, print its counters as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("merge", "aggregate"))
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = YAML(typ="safe").load(args.params)[args.stage]
    stage = merge if args.stage == "merge" else aggregate
    try:
        counters = stage(input_files(args.inputs), params, args.output)
    except ReferenceError as exc:
        print(f"reference: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(counters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
