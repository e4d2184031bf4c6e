"""Row checks both stages share: invalid lines, missing keys, non-finite values, reject records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from corpusprov.errors import DataError
from corpusprov.jsonl import LineError, canonical_line, find_special_values, replace_non_finite

__all__ = ["INVALID_ROW_REASONS", "Verdict", "check_line", "non_finite_count", "reject_line",
           "zero_counters"]

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

    __slots__ = ("detail", "digest", "label", "reason", "row", "special", "std", "unified")

    def __init__(self) -> None:
        self.reason: str | None = None
        """Why the row is rejected (``None`` when it is usable)."""
        self.detail = ""
        self.digest = b""
        self.row: Any = None
        self.special = False
        self.label: str | None = None
        self.unified = 0.0
        self.std = 0.0

    def reject(self, reason: str, detail: str, row: Any, *, special: bool = False) -> Verdict:
        """Mark the row rejected."""
        self.reason = reason
        self.detail = detail
        self.row = row
        self.special = special
        return self


def zero_counters(names: Iterable[str]) -> dict[str, int]:
    """Every counter at zero, so metrics columns are the same in every run."""
    return dict.fromkeys(names, 0)


def check_line(verdict: Verdict, line_no: int, row: Any, special: bool, error: LineError | None,
               display: str, *, required: frozenset[str], on_invalid_row: Literal["fail", "reject"],
               group: str) -> bool:
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
            raise DataError(message, path=display, line=line_no,
                            fix=f"add the key to the row, or drop it from {group}.required_keys "
                                "in params.yaml")
        verdict.reject("missing_key", message, row, special=special)
        return False
    verdict.row = row
    verdict.special = special
    return True


def apply_non_finite(verdict: Verdict, policy: Literal["keep", "null", "reject"]) -> bool:
    """Apply the non-finite policy to ``verdict.row``; False when that rejects the row."""
    if not verdict.special or policy == "keep":
        return True
    bad = [where for where, value in find_special_values(verdict.row) if isinstance(value, float)]
    if not bad:
        return True
    if policy == "reject":
        verdict.reject("non_finite_value", f"non-finite value in {', '.join(bad)}", verdict.row,
                       special=True)
        return False
    verdict.row = replace_non_finite(verdict.row)
    verdict.special = bool(find_special_values(verdict.row))
    return True


def non_finite_count(row: Any) -> int:
    """Non-finite floats anywhere in ``row``."""
    return sum(1 for _, value in find_special_values(row) if isinstance(value, float))


def count_non_finite(counters: dict[str, int], original: Any, special: bool, verdict: Verdict,
                     policy: Literal["keep", "null", "reject"]) -> None:
    """Count the non-finite values a usable row kept or had nulled."""
    if not special:
        return
    if policy == "keep":
        counters["non_finite_kept"] += non_finite_count(verdict.row)
    elif policy == "null" and verdict.row is not original:
        counters["non_finite_nulled"] += non_finite_count(original)


def reject_line(display: str, line_no: int, verdict: Verdict) -> bytes:
    """One rejects-file line: reason, source path and line, what was wrong, and the row."""
    record = {"reason": verdict.reason, "path": display, "line": line_no,
              "detail": verdict.detail, "row": verdict.row}
    return canonical_line(record, special=verdict.special)
