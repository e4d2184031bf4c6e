"""Row checks both stages share: invalid lines, missing keys, non-finite values, reject records."""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any, Final, NamedTuple

import orjson

from corpusprov.errors import DataError
from corpusprov.io.canonical import (
    canonical_line,
    find_special_values,
    replace_non_finite,
)
from corpusprov.io.jsonl import Block, JsonlOptions, LineError, is_blank, parse_line
from corpusprov.params.policies import InvalidRow, NonFinite
from corpusprov.params.stages import RowPolicyParams
from corpusprov.stages.keys import KEY_PERSON

__all__ = [
    "INVALID_ROW_REASONS",
    "BlockResult",
    "NativeAnswers",
    "Prepass",
    "Verdict",
    "apply_non_finite",
    "check_line",
    "judge_block",
    "native_context",
    "non_finite_count",
    "non_finite_count_py",
    "non_finite_tally",
    "reject_line",
]

_INFINITY: Final = float("inf")

#: Reasons a line is unusable as a row; they fail the run unless ``on_invalid_row: reject``.
INVALID_ROW_REASONS: Final = (
    "invalid_json",
    "truncated_line",
    "invalid_utf8",
    "not_an_object",
    "duplicate_key",
    "missing_key",
)


class Verdict:
    """How one row was judged; built once per row and shared by both passes of a stage."""

    __slots__ = (
        "before",
        "detail",
        "digest",
        "dropped",
        "from_strings",
        "label",
        "line",
        "native",
        "reason",
        "row",
        "special",
        "std",
        "unified",
    )

    def __init__(self) -> None:
        self.reason: str | None = None
        """Why the row is rejected (``None`` when it is usable)."""
        self.detail = ""
        self.digest = b""
        self.row: Any = None
        """The row to write (for aggregate's unified rows, the row built from the input)."""
        self.before: Any = None
        """``row`` before the non-finite policy replaced values (``None`` when it did not)."""
        self.special = False
        self.line: bytes | None = None
        """``row``'s canonical line when the parser wrote it (the row unchanged since), else ``None``."""
        self.label: str | None = None
        self.unified = 0.0
        self.native = 0.0
        self.std = 0.0
        self.from_strings = 0
        self.dropped = False

    def reject(self, reason: str, detail: str, row: Any, *, special: bool = False) -> Verdict:
        """Mark the row rejected."""
        self.reason = reason
        self.detail = detail
        self.row = row
        self.special = special
        return self


def check_line(
    verdict: Verdict,
    line_no: int,
    row: Any,
    special: bool,
    error: LineError | None,
    display: str,
    *,
    required: frozenset[str],
    on_invalid_row: InvalidRow,
    group: str,
) -> bool:
    """Reject (or raise for) an unusable line or a row missing required keys; True when usable."""
    if error is not None:
        if on_invalid_row == "fail":
            raise error
        verdict.reject(error.reason, error.message, {"raw": error.raw.decode("utf-8", "replace")})
        return False
    if not row.keys() >= required:
        missing = sorted(required.difference(row))
        shown = ", ".join(repr(name) for name in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        message = f"missing required key{'s' if len(missing) > 1 else ''} {shown}{more}"
        if on_invalid_row == "fail":
            raise DataError(
                message,
                path=display,
                line=line_no,
                fix=f"add the key to the row, or drop it from {group}.required_keys in params.yaml",
            )
        verdict.reject("missing_key", message, row, special=special)
        return False
    verdict.row = row
    verdict.special = special
    return True


def apply_non_finite(verdict: Verdict, policy: NonFinite) -> bool:
    """Apply the non-finite policy to ``verdict.row``; False when that rejects the row."""
    if not verdict.special or policy == "keep":
        return True
    bad = [where for where, value in find_special_values(verdict.row) if isinstance(value, float)]
    if not bad:
        return True
    if policy == "reject":
        verdict.reject("non_finite_value", f"non-finite value in {', '.join(bad)}", verdict.row, special=True)
        return False
    verdict.before = verdict.row
    verdict.row = replace_non_finite(verdict.row)
    verdict.special = bool(find_special_values(verdict.row))
    return True


def non_finite_count_py(row: Any) -> int:
    """Non-finite floats anywhere in ``row`` (a walk without paths: it runs for a third of real rows).

    The reference; ``non_finite_count`` is its native twin (``_bytescan.non_finite_count``) where
    the install built it.
    """
    count = 0
    stack = [row]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            count += item != item or item == _INFINITY or item == -_INFINITY
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return count


try:
    from corpusprov._bytescan import non_finite_count
except ImportError:  # pragma: no cover - an install without a C compiler
    non_finite_count = non_finite_count_py


def non_finite_tally(special: bool, verdict: Verdict, policy: NonFinite) -> tuple[int, int]:
    """``(kept, nulled)``: the non-finite values a usable row kept, or had replaced by null."""
    if not special:
        return 0, 0
    if policy == "keep":
        return non_finite_count(verdict.row), 0
    if policy == "null" and verdict.before is not None:
        return 0, non_finite_count(verdict.before)
    return 0, 0


class BlockResult(NamedTuple):
    """What a worker hands back for one block (one per block, so a NamedTuple is cheap here)."""

    tallies: dict[str, int]
    """Counters the block adds: ``rows_in``, ``blank_lines_skipped``, ``rejected_<reason>``,
    ``non_finite_kept``, ``non_finite_nulled`` and any the stage adds."""
    rejects: list[bytes]
    """Reject-file lines, in input order."""
    rows: list[tuple[Any, ...]]
    """One plain tuple per usable row, in input order, as the stage's ``make_row`` built it."""
    lines: bytes
    """The usable rows' output lines, joined: two objects to pickle and one to write, not a thousand."""
    lengths: bytes
    """Their lengths, an ``array("I")`` as bytes (see :meth:`line_lengths`)."""

    def line_lengths(self) -> array[int]:
        """The length of each usable row's line in :attr:`lines`, in order."""
        lengths = array("I")
        lengths.frombytes(self.lengths)
        return lengths


#: What a stage's native fast path gives for a block: ``(answered, rows, lines, lengths, kept)``,
#: one byte a line (1 where it answered), the answered lines' row tuples, their output lines
#: joined, their lengths (an ``array("I")`` as bytes) and the non-finite values they keep.
NativeAnswers = tuple[bytes, list[tuple[Any, ...]], bytes, bytes, int]

#: A stage's native fast path for a block: ``(raw lines) ->`` :data:`NativeAnswers`; see :func:`judge_block`.
Prepass = Callable[[list[bytes]], NativeAnswers]


def native_context(params: RowPolicyParams, key_fields: Sequence[str]) -> tuple[object, ...]:
    """What both native block functions (``_bytescan.merge_rows``, ``aggregate_rows``) are told
    first: orjson's loads (for the odd value a result reads: a list, an escaped string) and
    dumps (for a label override's JSON text), the key digest's personalisation (the C code
    hashes with its own BLAKE2b), the required keys, the key fields, the reader's CRLF and
    line-length options, and whether non-finite values are kept as they are."""
    options = params.jsonl
    return (
        orjson.loads,
        orjson.dumps,
        KEY_PERSON,
        tuple(params.required_keys),
        tuple(key_fields),
        options.crlf == "accept",
        options.max_line_bytes,
        params.non_finite == "keep",
    )


def judge_block(
    block: Block,
    options: JsonlOptions,
    policy: NonFinite,
    judge_line: Callable[[int, Any, bool, LineError | None], Verdict],
    make_row: Callable[[Verdict], tuple[bytes, tuple[Any, ...]]],
    *,
    write: bool = False,
    prepass: Prepass | None = None,
) -> BlockResult:
    """The per-block work both stages share: parse, judge, count, and one result per usable row.

    Blank lines, rows in, rejects and non-finite values are counted here, in the worker, and
    each rejected row's reject line built; ``make_row(verdict)`` gives a usable row's output
    line and its tuple (the lines travel joined, see :class:`BlockResult`); ``judge_line``
    raises for a row that fails the run. ``write``: a stage that writes rows as read gets
    each one's canonical line from the parser (``Verdict.line``). ``prepass``: a stage's
    native fast path, which answers for the usable rows it can vouch for in one call a block
    (:data:`NativeAnswers`); every other line takes the path above. Where it answers every
    line, its rows, joined lines and lengths are the block's result as they come.
    """
    rows: list[tuple[Any, ...]] = []
    lines: list[bytes] = []
    rejects: list[bytes] = []
    tallies: dict[str, int] = {}
    blank = kept_total = nulled_total = 0
    prepared: list[tuple[bytes, tuple[Any, ...]] | None] | None = None
    if prepass is not None:
        answered, native_rows, native_lines, native_lengths, kept_total = prepass(block.lines)
        if len(native_rows) == len(block.lines):  # every line: the block's result as it came
            tallies = {
                "rows_in": len(native_rows),
                "blank_lines_skipped": 0,
                "non_finite_kept": kept_total,
                "non_finite_nulled": 0,
            }
            return BlockResult(tallies, rejects, native_rows, native_lines, native_lengths)
        prepared = _per_line(answered, native_rows, native_lines, native_lengths)
    last = len(block.lines) - 1 if block.final_unterminated else -1
    for index, raw in enumerate(block.lines):
        if prepared is not None:
            done = prepared[index]
            if done is not None:
                lines.append(done[0])
                rows.append(done[1])
                continue
        line_no, row, special, error, line = parse_line(
            raw, block.first_line + index, options, block.display, last=index == last, write=write
        )
        if error is not None and is_blank(error):
            blank += 1
            continue
        verdict = judge_line(line_no, row, special, error)
        if verdict.reason is not None:
            name = "rejected_" + verdict.reason
            tallies[name] = tallies.get(name, 0) + 1
            rejects.append(reject_line(block.display, line_no, verdict))
            continue
        if line is not None and verdict.row is row:
            verdict.line = line
        if special:
            kept, nulled = non_finite_tally(special, verdict, policy)
            kept_total += kept
            nulled_total += nulled
        written, result = make_row(verdict)
        lines.append(written)
        rows.append(result)
    tallies["rows_in"] = len(rows) + len(rejects)
    tallies["blank_lines_skipped"] = blank
    tallies["non_finite_kept"] = kept_total
    tallies["non_finite_nulled"] = nulled_total
    return BlockResult(tallies, rejects, rows, b"".join(lines), array("I", map(len, lines)).tobytes())


def _per_line(
    answered: bytes, rows: list[tuple[Any, ...]], lines: bytes, lengths: bytes
) -> list[tuple[bytes, tuple[Any, ...]] | None]:
    """A prepass's answers line by line: ``(output line, row)`` where it answered, else ``None``."""
    line_lengths = array("I")
    line_lengths.frombytes(lengths)
    given = iter(zip(accumulate(line_lengths, initial=0), line_lengths, rows, strict=False))
    per_line: list[tuple[bytes, tuple[Any, ...]] | None] = []
    for taken in answered:
        if taken:
            start, length, row = next(given)
            per_line.append((lines[start : start + length], row))
        else:
            per_line.append(None)
    return per_line


def reject_line(display: str, line_no: int, verdict: Verdict) -> bytes:
    """One rejects-file line: reason, source path and line, what was wrong, and the row."""
    record = {"reason": verdict.reason, "path": display, "line": line_no, "detail": verdict.detail, "row": verdict.row}
    try:
        return canonical_line(record, special=verdict.special)
    except TypeError:
        # A row at the writer's depth limit does not fit one level down, inside the record:
        # keep it as its JSON text (stdlib json nests deeper), so the reject still says all.
        record["row"] = json.dumps(verdict.row, ensure_ascii=False, sort_keys=True)
        return canonical_line(record)
