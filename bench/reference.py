"""The reference: merge and aggregate written the way such scripts usually are, to measure ours against.

Same semantics as ``corpusprov merge`` / ``corpusprov aggregate`` under the default params
(required keys, natural-key dedup with 23 == 23.0, first seen wins; scale map, range slack,
the std-dev resolver, sorted output), built from the usual parts: stdlib ``json.loads`` per
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


def sort_text(value: Any) -> str:
    """A key field as sortable text (missing sorts first)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else dump(value)


def mos_problem(row: dict[str, Any], label: Any, scales: dict[str, Any], slack: float) -> str | None:
    """Why a MOS row cannot be placed on the unified scale, or ``None``."""
    if label is not None and not isinstance(label, str):
        raise ReferenceError(f"corpus label {label!r} is not a string")
    if label not in scales:
        return "unknown_corpus"
    mos = row["mos"]
    if isinstance(mos, bool) or not isinstance(mos, int | float):
        raise ReferenceError(f"mos {mos!r} is not a number")
    if not math.isfinite(mos):
        return "non_finite_mos"
    scale = scales[label]
    if not scale["min"] - slack <= mos <= scale["max"] + slack:
        return "bad_scale"
    return None


def unified_row(row: dict[str, Any], label: str, scale: dict[str, Any]) -> dict[str, Any]:
    """The input row with ``mos`` mapped onto 0-100 and its provenance fields."""
    span = scale["max"] - scale["min"]
    mos = row["mos"]
    value = (mos - scale["min"]) / span * 100.0 if scale["higher_is_better"] else (scale["max"] - mos) / span * 100.0
    unified = dict(row)
    unified["mos_native"] = mos
    unified["mos"] = value
    unified["mos_native_scale"] = scale["label"]
    unified["corpus_source"] = label
    return unified


def known_std(row: dict[str, Any], scale: dict[str, Any], units: str) -> float:
    """``mos_std_dev`` (on the 0-100 axis when ``units`` is ``unified``); unknown is infinity.

    Unknown means missing, 0, negative or non-finite: it loses to any known std-dev.
    """
    std = row.get("mos_std_dev")
    if isinstance(std, int | float) and not isinstance(std, bool) and math.isfinite(std) and std > 0:
        return float(std) * 100.0 / (scale["max"] - scale["min"]) if units == "unified" else float(std)
    return math.inf


def aggregate(files: list[Path], params: dict[str, Any], output: Path) -> dict[str, Any]:
    """Normalise MOS rows to 0-100 and resolve duplicates across corpora by smallest std-dev."""
    required = list(params["required_keys"])
    fields = list(params.get("dedup", {}).get("key", ["src_sha256"]))
    units = params.get("dedup", {}).get("std_dev_units", "unified")
    scales: dict[str, Any] = params["scales"]
    slack = float(params.get("range_slack", 0.05))
    if params.get("overrides") or params.get("non_finite", "keep") != "keep":
        raise ReferenceError("the reference implements no overrides and non_finite: keep only")
    winners: dict[Any, dict[str, Any]] = {}
    rejects: list[dict[str, Any]] = []
    rows_in = duplicates = order = 0
    for path in files:
        for line_no, row in read_rows(path, required):
            rows_in += 1
            label = row.get("corpus_source", row.get("corpus"))
            reason = mos_problem(row, label, scales, slack)
            try:
                key: Any = (
                    natural_key(row, fields)
                    if all(row.get(name) is not None for name in fields)
                    else ("fallback", row.get("src"), label)
                )
            except NonFiniteKeyError:
                reason = reason or "non_finite_key"
            if reason is not None:
                rejects.append({"reason": reason, "path": str(path), "line": line_no, "row": row})
                continue
            order += 1
            entry = winners.get(key)
            if entry is None:
                winners[key] = {
                    "row": unified_row(row, label, scales[label]),
                    "std": known_std(row, scales[label], units),
                    "order": order,
                    "corpora": {label},
                }
                continue
            duplicates += 1
            if label in entry["corpora"]:
                continue
            entry["corpora"].add(label)
            std = known_std(row, scales[label], units)
            if std < entry["std"]:
                entry.update(row=unified_row(row, label, scales[label]), std=std, order=order)
    ordered = sorted(
        winners.values(),
        key=lambda entry: (
            entry["row"]["corpus_source"],
            sort_text(entry["row"].get("src_sha256")),
            sort_text(entry["row"].get("src")),
            entry["order"],
        ),
    )
    rows_out = write_jsonl(output, (entry["row"] for entry in ordered))
    write_jsonl(rejects_path(output), rejects)
    by_corpus: dict[str, int] = {}
    for entry in ordered:
        by_corpus[entry["row"]["corpus_source"]] = by_corpus.get(entry["row"]["corpus_source"], 0) + 1
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "duplicates": duplicates,
        "rejected": len(rejects),
        "rows_by_corpus": by_corpus,
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
