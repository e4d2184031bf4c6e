"""Streaming JSONL: read each shard once in binary, hash exactly the bytes parsed, write canonically."""

from __future__ import annotations

import hashlib
import json
import math
import queue
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import orjson

from corpusprov.errors import DataError, InputError

__all__ = [
    "FLOAT_FORMAT",
    "INT64_MIN",
    "SERIALIZATION",
    "UINT64_MAX",
    "Digest",
    "FileHasher",
    "JsonlOptions",
    "JsonlReader",
    "LineError",
    "canonical_line",
    "fast_path_takes",
    "find_special_values",
    "parse_row",
    "parse_row_careful",
    "replace_non_finite",
]

#: Bytes read per chunk: large enough that hashing and splitting run at C speed.
CHUNK_BYTES: Final = 1024 * 1024

#: Target size of a block of lines handed to a worker process.
BLOCK_BYTES: Final = 256 * 1024

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

_UTF8_BOM: Final = b"\xef\xbb\xbf"
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
_JSON_SPACE: Final = b" \t\r\n"
#: The integers orjson writes itself; wider ones go through the careful writer.
INT64_MIN: Final = -(2**63)
UINT64_MAX: Final = 2**64 - 1


@dataclass(frozen=True)
class Digest:
    """Size and hashes of a byte stream, as the manifest and DVC record them."""

    bytes: int
    """Number of bytes hashed."""
    sha256: str
    """Hex sha256 of the bytes."""
    md5: str
    """Hex md5 of the bytes: what DVC 3 writes in ``dvc.lock`` (``hash: md5``)."""


class FileHasher:
    """sha256 + md5 + byte count over bytes fed in order."""

    __slots__ = ("_md5", "_sha256", "size")

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5()  # noqa: S324 -- DVC's content id, not a security use
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes."""
        self._sha256.update(data)
        self._md5.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        """The digest of everything fed so far."""
        return Digest(self.size, self._sha256.hexdigest(), self._md5.hexdigest())


class ThreadedHasher:
    """A :class:`FileHasher` fed from a background thread.

    hashlib releases the GIL on large buffers, so sha256 + md5 of one chunk run on the
    other core while this thread splits and parses the previous one.
    """

    def __init__(self) -> None:
        self._hasher = FileHasher()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="corpusprov-hash", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            self._hasher.update(chunk)

    def update(self, data: bytes) -> None:
        """Queue the next bytes (never empty)."""
        if data:
            self._queue.put(bytes(data))

    def digest(self) -> Digest:
        """Wait for the queue to drain and return the digest."""
        self.close()
        return self._hasher.digest()

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()


def hash_file(path: Path) -> Digest:
    """Hash a whole file (the floor every stage is measured against)."""
    hasher = FileHasher()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.digest()


@dataclass(frozen=True)
class JsonlOptions:
    """How tolerant the reader is of byte-level quirks.

    The defaults read what the original scripts read (and what vmaf-tune writes on Windows
    hosts): CRLF endings, blank lines and empty files are accepted and counted. A BOM is
    refused, as the original refuses it. Each can be made strict in params.
    """

    bom: Literal["reject", "accept"] = "reject"
    """A UTF-8 byte order mark at the start of the file."""
    crlf: Literal["reject", "accept"] = "accept"
    """``\\r\\n`` line endings."""
    blank_lines: Literal["reject", "skip"] = "skip"
    """Lines with nothing but white space."""
    empty_file: Literal["reject", "accept"] = "accept"
    """A file of zero bytes (no rows)."""
    max_line_bytes: int = 64 * 1024 * 1024
    """A longer line is taken for a file that lost its newlines."""
    params_path: str = "params.yaml"
    """Named in fix hints."""
    params_group: str = "merge"
    """The params group the options come from, named in fix hints."""

    def policy(self) -> dict[str, Any]:
        """The reader tolerance as the manifest's policy records it."""
        return {
            "bom": self.bom,
            "crlf": self.crlf,
            "blank_lines": self.blank_lines,
            "empty_file": self.empty_file,
            "max_line_bytes": self.max_line_bytes,
        }


@dataclass
class ReadStats:
    """What the reader saw besides rows."""

    bom: bool = False
    crlf_lines: int = 0
    blank_lines: int = 0


class LineError(DataError):
    """One line is not a JSON object the stage can use; ``reason`` names the kind."""

    def __init__(
        self, message: str, *, reason: str, path: str, line: int, fix: str | None = None, raw: bytes = b""
    ) -> None:
        super().__init__(message, path=path, line=line, fix=fix)
        self.reason = reason
        self.raw = raw


class JsonlReader:
    """Iterate ``(line_number, row, special, error)`` over one shard, hashing every byte read.

    ``row`` is the parsed object (``None`` when ``error`` is set); ``special`` says the row
    holds values orjson cannot write back as read (non-finite floats, integers beyond
    64 bits), so the writer takes its careful path. File-level problems (missing file,
    BOM or CRLF when the options forbid them, an empty file) raise; a line that is not a
    usable JSON object comes back as a :class:`LineError` so the stage can fail or reject
    by its policy. After iteration, :attr:`digest` is the hash of exactly the bytes parsed.
    """

    def __init__(self, path: Path, display: str, options: JsonlOptions | None = None) -> None:
        self.path = path
        self.display = display
        self.options = options or JsonlOptions()
        self.stats = ReadStats()
        self._digest: Digest | None = None

    @property
    def digest(self) -> Digest:
        """Hash of the bytes read; only valid once iteration finished."""
        if self._digest is None:
            raise RuntimeError("JsonlReader.digest read before the file was consumed")
        return self._digest

    def _fix(self, key: str, value: str) -> str:
        return f"or set {self.options.params_group}.jsonl.{key}: {value} in {self.options.params_path}"

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "rb")
        except FileNotFoundError as exc:
            raise InputError(
                "input file does not exist", path=self.display, fix="check the path, or run `dvc pull` / `dvc checkout`"
            ) from exc
        except IsADirectoryError as exc:
            raise InputError("input is a folder where a file was expected", path=self.display) from exc
        except OSError as exc:
            raise InputError(f"cannot read input: {exc.strerror or exc}", path=self.display) from exc

    def blocks(self, max_lines: int = 1024) -> Iterator[Block]:
        """Raw lines in order, a block at a time; every byte read is hashed (in a thread)."""
        options = self.options
        hasher = ThreadedHasher()
        handle = self._open()
        try:
            line_no = 0
            carry = b""
            first = True
            while True:
                try:
                    chunk = handle.read(CHUNK_BYTES)
                except OSError as exc:
                    raise InputError(f"cannot read input: {exc.strerror or exc}", path=self.display) from exc
                if not chunk:
                    break
                hasher.update(chunk)
                if first:
                    first = False
                    if chunk.startswith(_UTF8_BOM):
                        if options.bom == "reject":
                            raise DataError(
                                "file starts with a UTF-8 byte order mark",
                                path=self.display,
                                line=1,
                                fix="save it without BOM " + self._fix("bom", "accept"),
                            )
                        self.stats.bom = True
                        chunk = chunk[len(_UTF8_BOM) :]
                data = carry + chunk if carry else chunk
                lines = data.split(b"\n")
                carry = lines.pop()
                if len(carry) > options.max_line_bytes:
                    raise self._too_long(line_no + len(lines) + 1)
                if options.crlf == "accept" and b"\r" in data:
                    self.stats.crlf_lines += sum(1 for line in lines if line.endswith(b"\r"))
                # Blocks of about BLOCK_BYTES, whatever the row width, so the rows in
                # flight between worker processes take the same memory for wide rows.
                step = max(1, min(max_lines, BLOCK_BYTES * len(lines) // max(1, len(data) - len(carry))))
                for start in range(0, len(lines), step):
                    part = lines[start : start + step]
                    yield Block(self.display, line_no + 1, part, False)
                    line_no += len(part)
            if first and options.empty_file == "reject":
                raise DataError(
                    "file is empty (no rows)",
                    path=self.display,
                    fix="remove it from the inputs or fill it " + self._fix("empty_file", "accept"),
                )
            if carry:
                if options.crlf == "accept" and carry.endswith(b"\r"):
                    self.stats.crlf_lines += 1
                yield Block(self.display, line_no + 1, [carry], True)
            self._digest = hasher.digest()
        finally:
            hasher.close()
            handle.close()

    def __iter__(self) -> Iterator[tuple[int, Any, bool, LineError | None]]:
        for block in self.blocks():
            for line_no, row, special, error in parse_block(block, self.options):
                if error is _BLANK:
                    self.stats.blank_lines += 1
                yield line_no, row, special, error

    def _too_long(self, line_no: int) -> DataError:
        return _too_long(self.display, line_no, self.options)


def _fix_hint(options: JsonlOptions, key: str, value: str) -> str:
    return f"or set {options.params_group}.jsonl.{key}: {value} in {options.params_path}"


def _too_long(display: str, line_no: int, options: JsonlOptions) -> DataError:
    return DataError(
        f"line is longer than {options.max_line_bytes} bytes",
        path=display,
        line=line_no,
        fix="the file has probably lost its newlines; " + _fix_hint(options, "max_line_bytes", "<larger>"),
    )


@dataclass(frozen=True)
class Block:
    """Consecutive raw lines of one shard (what a worker process parses)."""

    display: str
    """The shard's repo-relative path."""
    first_line: int
    """Line number of ``lines[0]``."""
    lines: list[bytes]
    """Raw lines without their ``\\n``."""
    final_unterminated: bool
    """The last line is the end of the file with no newline after it."""


def parse_block(block: Block, options: JsonlOptions) -> Iterator[tuple[int, Any, bool, LineError | None]]:
    """Parse every line of ``block``: ``(line_no, row, special, error)`` as the reader yields them."""
    last_index = len(block.lines) - 1
    for index, raw in enumerate(block.lines):
        yield parse_line(
            raw, block.first_line + index, options, block.display, last=block.final_unterminated and index == last_index
        )


def parse_line(
    raw: bytes, line_no: int, options: JsonlOptions, display: str, *, last: bool = False
) -> tuple[int, Any, bool, LineError | None]:
    """One raw line: byte-level checks (length, CRLF, blank), then :func:`parse_row`."""
    if len(raw) > options.max_line_bytes:
        raise _too_long(display, line_no, options)
    if raw.endswith(b"\r"):
        if options.crlf == "reject":
            raise DataError(
                "line ends with CRLF (Windows line endings)",
                path=display,
                line=line_no,
                fix="convert the file with `dos2unix` " + _fix_hint(options, "crlf", "accept"),
            )
        raw = raw[:-1]
    if not raw or raw.isspace():
        if options.blank_lines == "reject":
            raise DataError(
                "blank line", path=display, line=line_no, fix="remove it " + _fix_hint(options, "blank_lines", "skip")
            )
        return line_no, None, False, _BLANK
    try:
        row, special = parse_row(raw)
    except _ParseError as problem:
        message = problem.message
        reason = problem.reason
        if last and problem.at_end:
            message += " (last line, no newline at the end: the file looks truncated)"
            reason = "truncated_line"
        return (
            line_no,
            None,
            False,
            LineError(message, reason=reason, path=display, line=line_no, fix=problem.fix, raw=raw),
        )
    return line_no, row, special, None


#: Marker the reader returns for a skipped blank line (never surfaced as an error).
_BLANK: Final = LineError("blank line", reason="blank", path="", line=0)


def is_blank(error: LineError | None) -> bool:
    """True when the reader skipped a blank line (allowed by the options)."""
    return error is _BLANK


class _ParseError(Exception):
    def __init__(self, message: str, reason: str, fix: str | None = None, *, at_end: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.fix = fix
        self.at_end = at_end


def parse_row(raw: bytes) -> tuple[dict[str, Any], bool]:
    """Parse one line into an object; ``True`` second when it holds special values."""
    fast = _parse_fast(raw)
    return _parse_careful(raw) if fast is None else fast


def parse_row_careful(raw: bytes) -> tuple[dict[str, Any], bool]:
    """The careful path alone (stdlib json): what :func:`parse_row` must agree with, line for line."""
    return _parse_careful(raw)


def fast_path_takes(raw: bytes) -> bool:
    """True when :func:`parse_row` answers ``raw`` on its fast path (the bench counts this)."""
    return _parse_fast(raw) is not None


def _parse_fast(raw: bytes) -> tuple[dict[str, Any], bool] | None:
    """orjson plus exact byte checks; ``None`` whenever only the careful path can vouch.

    It never reports an error itself: every error comes from the careful path, so messages,
    reasons and the truncated-line hint are the same whichever path a line would take.
    """
    # A one-byte search runs at memchr speed, a longer one at about 1 ns a byte: the cheap
    # test guards the dear one, since most rows have no backslash and no "I" (nor "N").
    if b"\\" in raw and b'\\"' in raw:
        # An escaped quote breaks the quote parity and the key count below.
        return None
    restores: list[tuple[str, float]] | None = None
    text = raw
    if (b"N" in raw and b"NaN" in raw) or (b"I" in raw and b"Infinity" in raw):
        substituted = _substitute_non_finite(raw)
        if substituted is None:
            return None
        text, restores = substituted
    try:
        row = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(row) is not dict:
        return None
    if _LONG_INTEGER in raw.translate(_FOLD) or _spaced_colon(raw):
        return None
    # Outside strings, `":` only ends a key; with no escaped quotes in the line the count is
    # exact, and more keys written than parsed means a duplicate key. Without a nested
    # object (no "{" after the first byte) every key is a top-level one.
    nested_object = raw.find(b"{", 1) != -1
    # Lists nest too: the opener count bounds the depth whichever brackets a row uses.
    if (nested_object or b"[" in raw) and raw.count(b"{") + raw.count(b"[") > _MAX_FAST_OPENERS:
        return None
    keys = _count_keys(row) if nested_object else len(row)
    if raw.count(b'":') != keys:
        return None
    if not restores:
        return row, False
    for key, value in restores:
        if row.get(key) != _NON_FINITE_MARK:
            return None
        row[key] = value
    return row, True


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


def _substitute_non_finite(raw: bytes) -> tuple[bytes, list[tuple[str, float]]] | None:
    """``raw`` with each bare ``NaN``/``Infinity``/``-Infinity`` value swapped for a marker string.

    orjson refuses the bare tokens, and a third of real rows carry one, so rather than send
    them to the stdlib parser the tokens become a unique string orjson reads, and the float
    goes back under its key afterwards. Only what can be placed exactly is swapped: a token
    outside strings (even quote count before it; the caller has ruled out escaped quotes),
    right after ``"key":``, in a row without nested objects. Anything else returns ``None``.
    """
    if _MARK_BYTES in raw or raw.find(b"{", 1) != -1:
        return None
    found: list[tuple[int, int, float]] = []
    for token, value in ((b"NaN", math.nan), (b"Infinity", math.inf)):
        at = raw.find(token)
        while at != -1:
            end = at + len(token)
            if not raw.count(b'"', 0, at) & 1:
                if value > 0 and at and raw[at - 1] == 0x2D:  # "-Infinity"
                    found.append((at - 1, end, -math.inf))
                else:
                    found.append((at, end, value))
            at = raw.find(token, end)
    if not found:
        return raw, []  # the tokens were all inside strings
    found.sort()
    pieces: list[bytes] = []
    restores: list[tuple[str, float]] = []
    position = 0
    for start, end, value in found:
        colon = start - 1
        while colon >= 0 and raw[colon] in _JSON_SPACE:
            colon -= 1
        if colon < 1 or raw[colon] != 0x3A:  # ":": the token is the value of a key
            return None
        close = colon - 1
        while close >= 0 and raw[close] in _JSON_SPACE:
            close -= 1
        if close < 1 or raw[close] != 0x22:
            return None
        key_bytes = raw[raw.rfind(b'"', 0, close) + 1 : close]
        if b"\\" in key_bytes:
            return None
        try:
            restores.append((key_bytes.decode("utf-8"), value))
        except UnicodeDecodeError:
            return None
        pieces.append(raw[position:start])
        pieces.append(_MARK_BYTES)
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
            raise _ParseError(f"duplicate key {key!r} inside one object", "duplicate_key", "keep one value per key")
        result[key] = value
    return result


def _parse_careful(raw: bytes) -> tuple[dict[str, Any], bool]:
    """The slow, exact path: NaN tokens, huge integers, duplicate keys, precise errors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _ParseError(
            f"invalid UTF-8 at byte {exc.start + 1}", "invalid_utf8", "re-encode the file as UTF-8"
        ) from None
    try:
        row = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as exc:
        # The error sits in the last, unfinished token: what a cut-off write looks like.
        tail = text[exc.pos :].strip()
        at_end = exc.msg.startswith("Unterminated string") or not any(mark in tail for mark in ",:}]")
        where = f"{exc.msg} column {exc.colno}" if exc.msg.endswith(" at") else f"{exc.msg} at column {exc.colno}"
        raise _ParseError(f"invalid JSON: {where}", "invalid_json", "fix or remove the line", at_end=at_end) from None
    except RecursionError:
        raise _ParseError("JSON nested too deeply", "invalid_json", "flatten the row") from None
    except ValueError as exc:  # e.g. int longer than sys.get_int_max_str_digits()
        raise _ParseError(f"invalid JSON: {exc}", "invalid_json", "fix the value") from None
    if type(row) is not dict:
        raise _ParseError(
            f"top-level JSON {_json_type(row)} where an object was expected",
            "not_an_object",
            "each line must be one JSON object",
        )
    special = bool(find_special_values(row))
    try:
        canonical_line(row, special=special)
    except TypeError as exc:  # orjson.JSONEncodeError, and a plain TypeError past its depth limit
        if "Recursion limit" in str(exc):
            raise _ParseError(
                "JSON nested deeper than the 254 levels the canonical writer can write",
                "invalid_json",
                "flatten the row",
            ) from None
        raise _ParseError(
            f"value cannot be written back as JSON: {exc}",
            "invalid_json",
            "fix the value (an unpaired \\u surrogate escape?)",
        ) from None
    except RecursionError:
        raise _ParseError("JSON nested too deeply", "invalid_json", "flatten the row") from None
    return row, special


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


_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_SENTINEL_PREFIX: Final = f"corpusprov-raw-{secrets.token_hex(12)}-"
#: What a bare non-finite token reads as on the fast path, until the float is put back.
_NON_FINITE_MARK: Final = f"{_SENTINEL_PREFIX}non-finite"
_MARK_BYTES: Final = f'"{_NON_FINITE_MARK}"'.encode()


def canonical_line(row: Any, *, special: bool = False) -> bytes:
    """One canonical JSONL line: sorted keys, compact, raw UTF-8, ``\\n``.

    ``special`` rows keep non-finite floats as ``NaN``/``Infinity``/``-Infinity`` tokens
    (as Python's json writes them) and integers beyond 64 bits exactly; orjson would
    write ``null`` or refuse, so those values travel as unique placeholder strings and are
    swapped back into the bytes.
    """
    if not special:
        return orjson.dumps(row, option=_OPTIONS)
    tokens: list[bytes] = []
    placeheld = _placehold(row, tokens)
    line = orjson.dumps(placeheld, option=_OPTIONS)
    for index, token in enumerate(tokens):
        line = line.replace(f'"{_SENTINEL_PREFIX}{index}"'.encode(), token, 1)
    return line


def _placehold(value: Any, tokens: list[bytes]) -> Any:
    kind = type(value)
    if kind is float and not math.isfinite(value):
        tokens.append(b"NaN" if math.isnan(value) else (b"Infinity" if value > 0 else b"-Infinity"))
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
