"""Helpers both sample generators share: row serialisation, stand-in hashes, padding, quirk placement."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time

from corpusprov.errors import UsageError

JsonRow = dict[str, object]

# Same bytes as json.dumps(row, ensure_ascii=False) (default separators, insertion order,
# bare NaN), but built once: json.dumps builds a new encoder per call when ensure_ascii=False.
ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)
NAN = float("nan")


def sha256_of(name: str) -> str:
    """A stand-in for hashing the video bytes: same name, same file, same hash."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def iso_utc(epoch_seconds: int) -> str:
    """``epoch_seconds`` as an ISO 8601 UTC timestamp with a ``Z`` suffix."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def padding_fields(extra_width: int) -> JsonRow:
    """Padding fields whose serialised form (``, "key": "value"``) adds ``extra_width`` bytes."""
    if extra_width < 0:
        raise UsageError(f"extra_width must be >= 0, got {extra_width}")
    fields: JsonRow = {}
    remaining = extra_width
    while remaining > 0:
        key = f"x_pad_{len(fields):02d}"
        overhead = len(key) + 8  # ', ' + two pairs of quotes + ': '
        value_len = max(0, min(1024 - overhead, remaining - overhead))
        fields[key] = "x" * value_len
        remaining -= overhead + value_len
    return fields


def spread_positions(rng: random.Random, size: int, counts: dict[str, int]) -> dict[int, str]:
    """Place ``counts[kind]`` special rows at distinct positions ``1..size-1`` (row 0 stays plain)."""
    total = sum(counts.values())
    positions = rng.sample(range(1, size), total)
    kinds = itertools.chain.from_iterable(itertools.repeat(kind, n) for kind, n in counts.items())
    return dict(zip(positions, kinds, strict=True))
