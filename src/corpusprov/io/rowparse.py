"""One JSON line into a row: an exact orjson fast path, and the careful stdlib path it must agree with."""

from __future__ import annotations

import json
import math
from typing import Any, Final

import orjson

from corpusprov.io.canonical import MARK_BYTES, NON_FINITE_MARK, canonical_line, find_special_values, restore_marks

__all__ = [
    "NATIVE_SCAN",
    "RowParseError",
    "fast_path_takes",
    "long_integer_py",
    "parse_row",
    "parse_row_careful",
    "parse_row_written",
    "quote_count_py",
    "substitute_non_finite_py",
]

# One C-speed pass folds every digit to "0" and every byte that may stand right before an
# integer literal (JSON white space, ":", ",", "[", "-") to " ", so one substring search
# finds what a regex would (at a tenth of the cost): " " + 19 zeros is an integer part of
# 19+ digits, which may not fit 64 bits (orjson would read it as a float). A fraction's
# digits follow "." and an exponent's follow "e", so full-precision floats such as
# 0.00012457020440578858 never match.
_FOLD: Final = bytes.maketrans(b"0123456789\t\r\n:,[-", b"0000000000       ")


_LONG_INTEGER: Final = b" " + b"0" * 19


#: orjson writes at most 254 levels of nesting; deeper rows take the careful path, which
#: reports them (the opener count bounds the depth from above).
_MAX_FAST_OPENERS: Final = 200


class RowParseError(Exception):
    def __init__(self, message: str, reason: str, fix: str | None = None, *, at_end: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.fix = fix
        self.at_end = at_end


def parse_row(raw: bytes) -> tuple[dict[str, Any], bool]:
    """Parse one line into an object; ``True`` second when it holds special values."""
    fast = _parse_fast(raw, write=False)
    if fast is None:
        row, special, _ = _parse_careful(raw)
        return row, special
    return fast[0], fast[1]


def parse_row_written(raw: bytes) -> tuple[dict[str, Any], bool, bytes]:
    """:func:`parse_row`, plus the row's canonical line (what ``canonical_line(row, special=...)`` gives).

    The fast path writes the line anyway, to check it lost no duplicate key (one quote count
    each side instead of three scans of the raw line), so a stage that writes the row as it
    was read need not serialise it again.
    """
    fast = _parse_fast(raw, write=True)
    if fast is None or fast[2] is None:
        return _parse_careful(raw)
    return fast[0], fast[1], fast[2]


def parse_row_careful(raw: bytes) -> tuple[dict[str, Any], bool]:
    """The careful path alone (stdlib json): what :func:`parse_row` must agree with, line for line."""
    row, special, _ = _parse_careful(raw)
    return row, special


def fast_path_takes(raw: bytes, *, write: bool = False) -> bool:
    """True when :func:`parse_row` (``write``: :func:`parse_row_written`) answers on its fast path."""
    fast = _parse_fast(raw, write=write)
    return fast is not None and (not write or fast[2] is not None)


def _parse_fast(raw: bytes, *, write: bool) -> tuple[dict[str, Any], bool, bytes | None] | None:
    """orjson plus exact byte checks; ``None`` whenever only the careful path can vouch.

    It never reports an error itself: every error comes from the careful path, so messages,
    reasons and the truncated-line hint are the same whichever path a line would take.
    ``write``: also return the canonical line (``None`` third when this path cannot write it).
    """
    # A one-byte search runs at memchr speed, a longer one at about 1 ns a byte: the cheap
    # test guards the dear one, since most rows have no backslash and no "I" (nor "N").
    escapes = b"\\" in raw
    if escapes and b'\\"' in raw:
        # An escaped quote breaks the quote parity and the key count below.
        return None
    restores: list[tuple[str, float]] | None = None
    text = raw
    if (b"N" in raw and b"NaN" in raw) or (b"I" in raw and b"Infinity" in raw):
        substituted = _substitute_non_finite(raw, MARK_BYTES)
        if substituted is None:
            return None
        text, restores = substituted
    try:
        row = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(row) is not dict:
        return None
    if _long_integer(raw):
        return None
    line: bytes | None = None
    # With no escaped quote (\" or \u0022) every '"' read delimits a string, and so does every
    # '"' orjson writes: the written line keeps every string the parser kept, so fewer quotes
    # written than read means a duplicate key's pair was dropped. orjson refuses to write
    # past 254 levels, which also bounds the depth. One dumps and two one-byte counts cost
    # less than the raw-line scans of :func:`_keys_all_counted` (a two-byte search runs at
    # about 1 ns a byte), so the check writes the line even when the caller does not want it.
    if not (escapes and b"\\u0022" in raw):
        try:
            line = canonical_line(row)
        except TypeError:  # orjson.JSONEncodeError: too deep, or a lone surrogate
            return None
        if _quote_count(text) != _quote_count(line):
            return None
        if not write:
            line = None
    elif not _keys_all_counted(raw, row):
        return None
    if not restores:
        return row, False, line
    for key, value in restores:
        if row.get(key) != NON_FINITE_MARK:
            return None
        row[key] = value
    if line is not None:
        line = restore_marks(line, [value for _, value in restores]) or canonical_line(row, special=True)
    return row, True, line


def _keys_all_counted(raw: bytes, row: dict[str, Any]) -> bool:
    """No duplicate key hides in ``raw`` (no spaced key, as many ``":`` as keys parsed) and it nests shallowly."""
    if _spaced_colon(raw):
        return False
    # Outside strings, `":` only ends a key; with no escaped quotes in the line the count is
    # exact, and more keys written than parsed means a duplicate key. Without a nested
    # object (no "{" after the first byte) every key is a top-level one.
    nested_object = raw.find(b"{", 1) != -1
    # Lists nest too: the opener count bounds the depth whichever brackets a row uses (with
    # no nested object, the one "{" is the row's own).
    if nested_object:
        if raw.count(b"{") + raw.count(b"[") > _MAX_FAST_OPENERS:
            return False
    elif b"[" in raw and raw.count(b"[") >= _MAX_FAST_OPENERS:
        return False
    keys = _count_keys(row) if nested_object else len(row)
    return raw.count(b'":') == keys


def _spaced_colon(raw: bytes) -> bool:
    """White space before a colon: a spaced key, which the fast duplicate-key count would miss.

    json.dumps writes '": ' (the space after the colon), which is fine. Tabs and line breaks
    are rare, so a memchr-speed test for them guards the slower two-byte search.
    """
    return (
        b" :" in raw
        or (b"\t" in raw and b"\t:" in raw)
        or (b"\r" in raw and b"\r:" in raw)
        or (b"\n" in raw and b"\n:" in raw)
    )


def long_integer_py(raw: bytes) -> bool:
    """An integer part of 19+ digits in ``raw`` (see :data:`_FOLD`); the native twin is ``_bytescan.long_integer``."""
    return _LONG_INTEGER in raw.translate(_FOLD)


def quote_count_py(data: bytes) -> int:
    """The ``"`` in ``data``; the native twin is ``_bytescan.quote_count``."""
    return data.count(b'"')


def substitute_non_finite_py(raw: bytes, mark: bytes = MARK_BYTES) -> tuple[bytes, list[tuple[str, float]]] | None:
    """``raw`` with each bare ``NaN``/``Infinity``/``-Infinity`` value swapped for a marker string.

    orjson refuses the bare tokens, and a third of real rows carry one, so rather than send
    them to the stdlib parser the tokens become a unique string orjson reads, and the float
    goes back under its key afterwards. Only a token right after ``"key":`` or ``"key": ``
    (compact writers, json.dumps) in a row without nested objects is swapped. The caller has
    ruled out escaped quotes, so every ``"`` delimits a string: where the ``"`` before the
    colon opens a string instead of closing a key, the marker lands as a bare word that
    orjson refuses, and the caller checks that every key named here holds the marker.
    Tokens anywhere else stay bare: orjson refuses those too, and the careful path answers.
    """
    if mark in raw or raw.find(b"{", 1) != -1:
        return None
    found: list[tuple[int, int, float, bytes]] = []
    for token, value in ((b"NaN", math.nan), (b"Infinity", math.inf)):
        at = raw.find(token)
        while at != -1:
            end = at + len(token)
            start = at - 1 if value > 0 and raw[at - 1] == 0x2D else at  # "-Infinity"
            colon = start - 1 if raw[start - 1] == 0x3A else start - 2  # '":' or '": '
            if raw[colon] == 0x3A and raw[colon - 1] == 0x22 and (colon == start - 1 or raw[start - 1] == 0x20):
                key = raw[raw.rfind(b'"', 0, colon - 1) + 1 : colon - 1]
                found.append((start, end, -value if start < at else value, key))
            at = raw.find(token, end)
    if not found:
        return raw, []  # the tokens were all inside strings (or bare where orjson refuses them)
    found.sort()
    pieces: list[bytes] = []
    restores: list[tuple[str, float]] = []
    position = 0
    for start, end, value, key in found:
        if b"\\" in key:
            return None
        try:
            restores.append((key.decode("utf-8"), value))
        except UnicodeDecodeError:
            return None
        pieces.append(raw[position:start])
        pieces.append(mark)
        position = end
    pieces.append(raw[position:])
    return b"".join(pieces), restores


def _count_keys(value: Any) -> int:
    if type(value) is dict:
        total = len(value)
        for item in value.values():
            if type(item) is dict or type(item) is list:
                total += _count_keys(item)
        return total
    if type(value) is list:
        total = 0
        for item in value:
            if type(item) is dict or type(item) is list:
                total += _count_keys(item)
        return total
    return 0


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RowParseError(f"duplicate key {key!r} inside one object", "duplicate_key", "keep one value per key")
        result[key] = value
    return result


def _parse_careful(raw: bytes) -> tuple[dict[str, Any], bool, bytes]:
    """The slow, exact path: NaN tokens, huge integers, duplicate keys, precise errors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RowParseError(
            f"invalid UTF-8 at byte {exc.start + 1}", "invalid_utf8", "re-encode the file as UTF-8"
        ) from None
    try:
        row = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as exc:
        # The error sits in the last, unfinished token: what a cut-off write looks like.
        tail = text[exc.pos :].strip()
        at_end = exc.msg.startswith("Unterminated string") or not any(mark in tail for mark in ",:}]")
        where = f"{exc.msg} column {exc.colno}" if exc.msg.endswith(" at") else f"{exc.msg} at column {exc.colno}"
        raise RowParseError(f"invalid JSON: {where}", "invalid_json", "fix or remove the line", at_end=at_end) from None
    except RecursionError:
        raise RowParseError("JSON nested too deeply", "invalid_json", "flatten the row") from None
    except ValueError as exc:  # e.g. int longer than sys.get_int_max_str_digits()
        raise RowParseError(f"invalid JSON: {exc}", "invalid_json", "fix the value") from None
    if type(row) is not dict:
        raise RowParseError(
            f"top-level JSON {_json_type(row)} where an object was expected",
            "not_an_object",
            "each line must be one JSON object",
        )
    special = bool(find_special_values(row))
    try:
        line = canonical_line(row, special=special)
    except TypeError as exc:  # orjson.JSONEncodeError, and a plain TypeError past its depth limit
        if "Recursion limit" in str(exc):
            raise RowParseError(
                "JSON nested deeper than the 254 levels the canonical writer can write",
                "invalid_json",
                "flatten the row",
            ) from None
        raise RowParseError(
            f"value cannot be written back as JSON: {exc}",
            "invalid_json",
            "fix the value (an unpaired \\u surrogate escape?)",
        ) from None
    except RecursionError:
        raise RowParseError("JSON nested too deeply", "invalid_json", "flatten the row") from None
    return row, special, line


# The byte checks run natively when the install could build corpusprov._bytescan (the same
# answers, property-tested against the functions above; about 8 us less a real-shaped row).
try:
    from corpusprov._bytescan import long_integer as _long_integer
    from corpusprov._bytescan import quote_count as _quote_count
    from corpusprov._bytescan import substitute_non_finite as _substitute_non_finite

    NATIVE_SCAN: Final = True
except ImportError:  # installed without a C compiler
    _long_integer = long_integer_py
    _quote_count = quote_count_py
    _substitute_non_finite = substitute_non_finite_py
    NATIVE_SCAN: Final = False  # type: ignore[misc]
