"""The aggregate params: per-corpus scale maps onto 0-100 (slope, intercept), overrides, the policy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from corpusprov.params.defaults import MOS_REQUIRED_KEYS
from corpusprov.params.load import GroupReader, ParamsFile
from corpusprov.params.policies import (
    MISSING_INPUT,
    OUTPUT_ROW,
    STD_DEV_UNITS,
)
from corpusprov.params.stages import AggregateParams, read_row_policy

__all__ = ["ScaleEntry", "aggregate_params", "check_overrides"]


#: The resolver, in words, as the manifest records it.
@dataclass(frozen=True)
class ScaleEntry:
    """How one corpus's native scores map onto the unified 0-100 axis."""

    corpus: str
    """The corpus label (as rows and overrides name it)."""
    native_min: float
    """Lowest score of the native scale."""
    native_max: float
    """Highest score of the native scale."""
    higher_is_better: bool
    """False for DMOS-style scales, where lower means better quality."""
    label: str
    """Written into each unified row's ``mos_native_scale``."""
    citation: str | None = None
    """Where the scale is published."""
    licence: str | None = None
    """The corpus's licence, as the team records it."""

    def contains(self, value: float, slack: float) -> bool:
        """Whether ``value`` lies within the native range widened by ``slack``."""
        return self.native_min - slack <= value <= self.native_max + slack

    def span(self) -> float:
        """Native units from min to max."""
        return self.native_max - self.native_min

    # Computed once per scale (to_unified runs for every row); frozen dataclasses allow it.
    @cached_property
    def slope(self) -> float:
        """``100 / (max - min)``, negated for DMOS: the original's ``slope``."""
        slope = 100.0 / (self.native_max - self.native_min)
        return slope if self.higher_is_better else -slope

    @cached_property
    def intercept(self) -> float:
        """``-min * slope`` (``max * 100 / (max - min)`` for DMOS): the original's ``intercept``."""
        if self.higher_is_better:
            # `+ 0.0` turns -0.0 (min = 0) into 0.0: the same sums, a tidier manifest.
            return -self.native_min * self.slope + 0.0
        return self.native_max * 100.0 / (self.native_max - self.native_min)

    def to_unified(self, value: float) -> float:
        """``slope * x + intercept``, as ``aggregate_corpora.py`` computes it; never clipped.

        In this form an identity scale (0-100) is exact and a 1-5 scale is ``25.0 * x - 25.0``,
        so the unified floats are the original's bits.
        """
        return self.slope * value + self.intercept

    def formula(self) -> str:
        """The map as a person reads it: slope and intercept."""
        intercept = self.intercept
        sign = "-" if intercept < 0 else "+"
        return f"mos = {_number(self.slope)} * x {sign} {_number(abs(intercept))}"

    def to_dict(self) -> dict[str, Any]:
        """Manifest form."""
        return {
            "corpus": self.corpus,
            "native_min": self.native_min,
            "native_max": self.native_max,
            "higher_is_better": self.higher_is_better,
            "label": self.label,
            "slope": self.slope,
            "intercept": self.intercept,
            "formula": self.formula(),
            "citation": self.citation,
            "licence": self.licence,
        }


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _scale(group: GroupReader, corpus: str) -> ScaleEntry:
    node = group.raw(corpus)
    if not hasattr(node, "items"):
        raise group.error(corpus, "must be a mapping with min, max, higher_is_better and label")
    entry = group.sub(corpus)
    for required in ("min", "max", "higher_is_better", "label"):
        if not entry.has(required):
            raise group.error(
                corpus,
                f"is missing `{required}`",
                fix="give min, max, higher_is_better and label (citation and licence are optional)",
            )
    native_min = entry.number("min", 0.0)
    native_max = entry.number("max", 0.0)
    if not native_min < native_max:
        raise entry.error(
            "min",
            f"min {_number(native_min)} must be below max {_number(native_max)}",
            fix="fix the native range (a DMOS scale keeps min < max and sets higher_is_better: false)",
        )
    higher = entry.raw("higher_is_better")
    if not isinstance(higher, bool):
        raise entry.error(
            "higher_is_better",
            f"unknown direction {higher!r}",
            fix="use true (MOS: higher is better) or false (DMOS: lower is better)",
        )
    label = entry.string("label")
    if not label:
        raise entry.error("label", "must be a non-empty string")
    citation = entry.string("citation")
    licence = entry.string("licence")
    entry.finish()
    return ScaleEntry(corpus, native_min, native_max, higher, label, citation, licence)


def aggregate_params(params: ParamsFile) -> AggregateParams:
    """Validate the ``aggregate`` group; every problem is reported before any input is read."""
    group = params.group("aggregate")
    scales_group = group.sub("scales")
    scales = {str(corpus): _scale(scales_group, str(corpus)) for corpus in scales_group.node}
    scales_group.finish()
    if not scales:
        raise group.error(
            "scales",
            "no scale map: aggregate needs one entry per corpus",
            fix="copy the `scales` block from the template's params.yaml",
        )
    range_slack = group.number("range_slack", 0.05, minimum=0.0)
    overrides_group = group.sub("overrides")
    overrides: dict[str, str] = {}
    for path in overrides_group.node:
        label = overrides_group.string(str(path))
        if label not in scales:
            raise overrides_group.error(
                str(path),
                f"label {label!r} has no entry in aggregate.scales",
                fix="add a scale for it or fix the label",
            )
        clean = str(path).rstrip("/")
        if clean.startswith(("/", "~", "../")) or clean == ".." or "/../" in clean:
            raise overrides_group.error(
                str(path), "path leaves the repository", fix="name inputs by their repo-relative path"
            )
        overrides[clean] = str(label)
    overrides_group.finish()
    dedup = group.sub("dedup")
    dedup_key = dedup.names("key", ("src_sha256",))
    std_dev_units = dedup.choice("std_dev_units", STD_DEV_UNITS, "native")
    dedup.finish()
    required = group.names("required_keys", MOS_REQUIRED_KEYS)
    if "mos" not in required:
        raise group.error("required_keys", "must include 'mos'", fix="aggregate cannot place a row without its score")
    output_row = group.choice("output_row", OUTPUT_ROW, "unified")
    on_missing_input = group.choice("on_missing_input", MISSING_INPUT, "fail")
    shared = read_row_policy(group, params, "aggregate")
    group.finish()
    return AggregateParams(
        scales=scales,
        range_slack=range_slack,
        overrides=overrides,
        dedup_key=dedup_key,
        std_dev_units=std_dev_units,
        output_row=output_row,
        on_missing_input=on_missing_input,
        required_keys=required,
        **shared,
    )


def check_overrides(params: AggregateParams, paths: set[str], params_file: ParamsFile) -> None:
    """Refuse an override that names no input: a typo must not silently leave labels alone."""
    overrides = params_file.group("aggregate").sub("overrides")
    for path in params.overrides:
        if path not in paths:
            written = next((str(key) for key in overrides.node if str(key).rstrip("/") == path), path)
            raise overrides.error(
                written,
                f"names {path!r}, which is not an input",
                fix="fix the path (repo-relative, as `corpusprov aggregate` is given it) or remove the override",
            )
