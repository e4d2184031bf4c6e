"""The policy vocabularies of params.yaml, each written once: the type and the choices a reader accepts."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "BLANK_LINES",
    "BYTE_QUIRK",
    "INVALID_ROW",
    "KEEP",
    "MISSING_INPUT",
    "NON_FINITE",
    "OUTPUT_ROW",
    "STD_DEV_UNITS",
    "BlankLines",
    "ByteQuirk",
    "InvalidRow",
    "Keep",
    "MissingInput",
    "NonFinite",
    "OutputRow",
    "StdDevUnits",
]

NonFinite = Literal["keep", "null", "reject"]
"""NaN/Infinity outside the key: written back, replaced by null, or the row rejected."""
InvalidRow = Literal["fail", "reject"]
"""An unusable row fails the run, or goes to the rejects file."""
Keep = Literal["first", "last"]
"""Which occurrence of a merge key wins."""
StdDevUnits = Literal["native", "unified"]
"""Aggregate std-devs compared as written, or on the 0-100 axis."""
OutputRow = Literal["unified", "passthrough"]
"""The original's 17-field unified row, or the input row plus the unified fields."""
MissingInput = Literal["fail", "skip"]
"""A missing aggregate input fails the run, or is skipped and recorded."""
ByteQuirk = Literal["reject", "accept"]
"""A BOM, CRLF endings or an empty file: refused or read."""
BlankLines = Literal["reject", "skip"]
"""Blank lines: refused or skipped (counted)."""

NON_FINITE: Final[tuple[NonFinite, ...]] = get_args(NonFinite)
INVALID_ROW: Final[tuple[InvalidRow, ...]] = get_args(InvalidRow)
KEEP: Final[tuple[Keep, ...]] = get_args(Keep)
STD_DEV_UNITS: Final[tuple[StdDevUnits, ...]] = get_args(StdDevUnits)
OUTPUT_ROW: Final[tuple[OutputRow, ...]] = get_args(OutputRow)
MISSING_INPUT: Final[tuple[MissingInput, ...]] = get_args(MissingInput)
BYTE_QUIRK: Final[tuple[ByteQuirk, ...]] = get_args(ByteQuirk)
BLANK_LINES: Final[tuple[BlankLines, ...]] = get_args(BlankLines)
