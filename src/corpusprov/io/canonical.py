"""The canonical writer: sorted keys, compact, UTF-8, pinned floats, NaN tokens kept; the contract it records."""

from __future__ import annotations

import math
import secrets
from typing import Any, Final

import orjson

__all__ = [
    "CANONICAL_OPTIONS",
    "FLOAT_FORMAT",
    "INT64_MIN",
    "MARK_BYTES",
    "NON_FINITE_MARK",
    "SERIALIZATION",
    "UINT64_MAX",
    "canonical_line",
    "find_special_values",
    "replace_non_finite",
    "restore_marks",
]

#: How floats come out: orjson's shortest round-trip form (e.g. ``5e-05`` -> ``0.00005``,
#: ``1e16`` -> ``1e+16``, ``23.0`` stays ``23.0``). Pinned by golden tests; the output
#: hash depends on it, so the manifest names it.
FLOAT_FORMAT: Final = f"orjson-{orjson.__version__.split('.')[0]}-shortest-roundtrip"


#: The serialisation contract recorded in every manifest.
SERIALIZATION: Final[dict[str, str]] = {
    "format": "jsonl",
    "encoding": "utf-8 (no \\u escapes for non-ASCII)",
    "keys": "sorted",
    "separators": "compact",
    "newline": "\\n",
    "float_format": FLOAT_FORMAT,
    "non_finite": "NaN/Infinity/-Infinity tokens, as Python's json writes them",
}


#: The integers orjson writes itself; wider ones go through the careful writer.
INT64_MIN: Final = -(2**63)


UINT64_MAX: Final = 2**64 - 1


#: orjson's options for a canonical line (the native merge fast path passes them to orjson too).
CANONICAL_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


_SENTINEL_PREFIX: Final = f"corpusprov-raw-{secrets.token_hex(12)}-"


#: What a bare non-finite token reads as on the fast path, until the float is put back.
NON_FINITE_MARK: Final = f"{_SENTINEL_PREFIX}non-finite"


MARK_BYTES: Final = f'"{NON_FINITE_MARK}"'.encode()


def canonical_line(row: Any, *, special: bool = False) -> bytes:
    """One canonical JSONL line: sorted keys, compact, raw UTF-8, ``\\n``.

    ``special`` rows keep non-finite floats as ``NaN``/``Infinity``/``-Infinity`` tokens
    (as Python's json writes them) and integers beyond 64 bits exactly; orjson would
    write ``null`` or refuse, so those values travel as unique placeholder strings and are
    swapped back into the bytes.
    """
    if not special:
        return orjson.dumps(row, option=CANONICAL_OPTIONS)
    tokens: list[bytes] = []
    placeheld = _placehold(row, tokens)
    line = orjson.dumps(placeheld, option=CANONICAL_OPTIONS)
    for index, token in enumerate(tokens):
        line = line.replace(f'"{_SENTINEL_PREFIX}{index}"'.encode(), token, 1)
    return line


def restore_marks(line: bytes, values: list[float]) -> bytes | None:
    """A line written with :data:`NON_FINITE_MARK` strings, each one swapped for its float's token.

    ``None`` when the swap needs the marks' order, that is when ``values`` mix NaN and the
    infinities (the caller writes the row afresh): written in sorted-key order, identical
    marks cannot say which value each one was.
    """
    first = _token(values[0])
    if any(_token(value) != first for value in values[1:]) or line.count(MARK_BYTES) != len(values):
        return None
    return line.replace(MARK_BYTES, first)


def _token(value: float) -> bytes:
    return b"NaN" if math.isnan(value) else (b"Infinity" if value > 0 else b"-Infinity")


def _placehold(value: Any, tokens: list[bytes]) -> Any:
    kind = type(value)
    if kind is float and not math.isfinite(value):
        tokens.append(_token(value))
        return f"{_SENTINEL_PREFIX}{len(tokens) - 1}"
    if kind is int and (value < INT64_MIN or value > UINT64_MAX):
        tokens.append(str(value).encode())
        return f"{_SENTINEL_PREFIX}{len(tokens) - 1}"
    if kind is dict:
        # Copy a container only when something inside it changes: a real row has one NaN
        # among ~60 values, and rebuilding every dict cost more than the serialisation.
        copied: dict[str, Any] | None = None
        for key, child in value.items():
            child_kind = type(child)
            if child_kind is str or child_kind is bool or child is None:
                continue
            if child_kind is float and math.isfinite(child):
                continue
            if child_kind is int and INT64_MIN <= child <= UINT64_MAX:
                continue
            if child_kind is list and all(type(item) is str for item in child):
                continue  # extra_params and the like
            replaced = _placehold(child, tokens)
            if replaced is not child:
                if copied is None:
                    copied = dict(value)
                copied[key] = replaced
        return value if copied is None else copied
    if kind is list:
        items: list[Any] | None = None
        for index, child in enumerate(value):
            replaced = _placehold(child, tokens)
            if replaced is not child:
                if items is None:
                    items = list(value)
                items[index] = replaced
        return value if items is None else items
    return value


def find_special_values(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Dotted paths of non-finite floats and integers beyond 64 bits inside ``value``."""
    if type(value) is not dict and type(value) is not list:
        return [(path, value)] if _is_special(value) else []
    found: list[tuple[str, Any]] = []
    # An explicit stack of containers (rows may nest deeper than the recursion limit); a
    # path string is built only for a hit or a container, not for each of ~60 scalars.
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        is_dict = type(item) is dict
        for key, child in item.items() if is_dict else enumerate(item):
            kind = type(child)
            if kind is float:
                if math.isfinite(child):
                    continue
            elif kind is int:
                if INT64_MIN <= child <= UINT64_MAX:
                    continue
            elif kind is not dict and kind is not list:
                continue
            name = (f"{where}.{key}" if where else str(key)) if is_dict else f"{where}[{key}]"
            if kind is dict or kind is list:
                stack.append((name, child))
            else:
                found.append((name, child))
    found.sort(key=lambda pair: pair[0])
    return found


def _is_special(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return not math.isfinite(value)
    return kind is int and (value < INT64_MIN or value > UINT64_MAX)


def replace_non_finite(value: Any, replacement: Any = None) -> Any:
    """A copy of ``value`` with every non-finite float replaced."""
    kind = type(value)
    if kind is float and not math.isfinite(value):
        return replacement
    if kind is dict:
        return {key: replace_non_finite(child, replacement) for key, child in value.items()}
    if kind is list:
        return [replace_non_finite(child, replacement) for child in value]
    return value
