"""Both stages' params types side by side, on one shared row-policy part, and the readers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corpusprov.io.jsonl import JsonlOptions
from corpusprov.params.defaults import ENCODE_GRID_REQUIRED_KEYS, MERGE_DEDUP_KEY, MOS_REQUIRED_KEYS
from corpusprov.params.load import GroupReader, ParamsFile
from corpusprov.params.policies import (
    BLANK_LINES,
    BYTE_QUIRK,
    INVALID_ROW,
    KEEP,
    NON_FINITE,
    InvalidRow,
    Keep,
    MissingInput,
    NonFinite,
    OutputRow,
    StdDevUnits,
)

if TYPE_CHECKING:
    from corpusprov.params.scales import ScaleEntry

__all__ = [
    "RESOLVER",
    "AggregateParams",
    "MergeParams",
    "RowPolicyParams",
    "merge_params",
    "read_jsonl_options",
    "read_row_policy",
]

RESOLVER = (
    "rows sharing a key are offered in input order against the current winner: a row "
    "whose resolved corpus label equals the winner's is a same-corpus duplicate and is "
    "dropped; otherwise it is a cross-corpus duplicate and the smaller positive finite "
    "mos_std_dev wins, compared in {units} units; a std-dev that is missing, null, 0, "
    "negative, non-finite or non-numeric is unknown and loses to any known one; ties keep "
    "the current winner. Rows whose key field is missing, not a string or empty are keyed "
    "by (src, corpus_source)."
)


@dataclass(frozen=True, kw_only=True)
class RowPolicyParams:
    """What both stages ask of every row: required keys, non-finite values, unusable rows, the bytes."""

    required_keys: tuple[str, ...] = ()
    """Keys every row must carry."""
    non_finite: NonFinite = "keep"
    """What to do with NaN/Infinity outside the key (and, in aggregate, outside ``mos``)."""
    on_invalid_row: InvalidRow = "fail"
    """Whether an unusable row fails the run or goes to the rejects file."""
    jsonl: JsonlOptions = field(default_factory=JsonlOptions)
    """Byte-level tolerance of the reader."""

    def row_policy(self) -> dict[str, Any]:
        """The shared part of the policy, as the manifest records it."""
        return {
            "required_keys": list(self.required_keys),
            "non_finite": self.non_finite,
            "on_invalid_row": self.on_invalid_row,
            "jsonl": self.jsonl.policy(),
        }


@dataclass(frozen=True, kw_only=True)
class MergeParams(RowPolicyParams):
    """The ``merge`` group, validated, with defaults filled in."""

    required_keys: tuple[str, ...] = ENCODE_GRID_REQUIRED_KEYS
    """Keys every row must carry (the 54 vmaf-tune keys)."""
    dedup_key: tuple[str, ...] = MERGE_DEDUP_KEY
    """The natural key."""
    keep: Keep = "first"
    """Which occurrence of a natural key wins."""

    def policy(self) -> dict[str, Any]:
        """The policy as the manifest records it."""
        return {
            **self.row_policy(),
            "dedup": {
                "key": list(self.dedup_key),
                "keep": self.keep,
                "key_semantics": "numbers by value (23 == 23.0), strings exactly, "
                "a string never equals a number, booleans are not numbers",
            },
            "non_finite_in_key": "reject",
        }


@dataclass(frozen=True, kw_only=True)
class AggregateParams(RowPolicyParams):
    """The ``aggregate`` group, validated, with defaults filled in."""

    scales: dict[str, ScaleEntry]
    """Scale map by corpus label."""
    required_keys: tuple[str, ...] = MOS_REQUIRED_KEYS
    """Keys every row must carry."""
    range_slack: float = 0.05
    """Native units a score may lie outside its range and still count (rounding)."""
    overrides: dict[str, str] = field(default_factory=dict)
    """Input path (file or folder argument) -> corpus label forced on its rows."""
    dedup_key: tuple[str, ...] = ("src_sha256",)
    """Cross-corpus identity of a source."""
    std_dev_units: StdDevUnits = "native"
    """Compare std-devs as written (native units, the original's rule) or on the 0-100 axis."""
    output_row: OutputRow = "unified"
    """The original's 17-field unified row, or the input row plus the unified fields."""
    on_missing_input: MissingInput = "fail"
    """A missing input fails the run, or is skipped and recorded (the original skips it)."""

    def resolver(self) -> str:
        """The dedup resolver in words."""
        units = (
            "unified 0-100 (std-dev * 100 / native span)" if self.std_dev_units == "unified" else "native (as written)"
        )
        return RESOLVER.format(units=units)

    def policy(self) -> dict[str, Any]:
        """The policy as the manifest records it."""
        return {
            **self.row_policy(),
            "dedup": {
                "key": list(self.dedup_key),
                "fallback_key": ["src", "corpus_source"],
                "std_dev_units": self.std_dev_units,
                "resolver": self.resolver(),
            },
            "label_resolution": (
                "per-input override in params > row corpus_source when a non-empty string > row corpus"
            ),
            "output_row": self.output_row,
            "on_missing_input": self.on_missing_input,
            "numbers_from_strings": "mos and mos_std_dev given as numeric strings are read as numbers",
            "range_slack": self.range_slack,
            "clipping": "never",
            "non_finite_mos": "reject",
            "output_order": "corpus_source, src_sha256, then the original's key text, input order",
        }


def read_jsonl_options(group: GroupReader, params_display: str, group_name: str) -> JsonlOptions:
    """The ``jsonl`` sub-group shared by every stage."""
    jsonl = group.sub("jsonl")
    options = JsonlOptions(
        bom=jsonl.choice("bom", BYTE_QUIRK, "reject"),
        crlf=jsonl.choice("crlf", BYTE_QUIRK, "accept"),
        blank_lines=jsonl.choice("blank_lines", BLANK_LINES, "skip"),
        empty_file=jsonl.choice("empty_file", BYTE_QUIRK, "accept"),
        max_line_bytes=jsonl.integer("max_line_bytes", JsonlOptions.max_line_bytes, minimum=1),
        params_path=params_display,
        params_group=group_name,
    )
    jsonl.finish()
    return options


def read_row_policy(group: GroupReader, params: ParamsFile, group_name: str) -> dict[str, Any]:
    """The shared row-policy keys of a group, as keyword arguments for its params type (``jsonl`` last)."""
    return {
        "non_finite": group.choice("non_finite", NON_FINITE, "keep"),
        "on_invalid_row": group.choice("on_invalid_row", INVALID_ROW, "fail"),
        "jsonl": read_jsonl_options(group, params.display or "params.yaml", group_name),
    }


def merge_params(params: ParamsFile) -> MergeParams:
    """Validate the ``merge`` group."""
    group = params.group("merge")
    required = group.names("required_keys", ENCODE_GRID_REQUIRED_KEYS)
    dedup = group.sub("dedup")
    dedup_key = dedup.names("key", MERGE_DEDUP_KEY)
    keep = dedup.choice("keep", KEEP, "first")
    dedup.finish()
    for name in dedup_key:
        if name not in required:
            raise dedup.error(
                "key",
                f"{name!r} is not one of merge.required_keys",
                fix="a dedup key field must be required, or rows could lack it",
            )
    shared = read_row_policy(group, params, "merge")
    group.finish()
    return MergeParams(required_keys=required, dedup_key=dedup_key, keep=keep, **shared)
