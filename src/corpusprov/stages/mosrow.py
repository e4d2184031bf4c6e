"""The MOS row contract: labels, numbers, the unified 17-field row and the key, as the original forms them.

:class:`AggregateJudge` judges one parsed line for the ``aggregate`` stage's workers and for
``trace``: the resolved corpus label, the score on 0-100, the std-dev the resolver compares,
the dedup key digest and the row to write (``aggregate_corpora.py``'s unified row by default).
"""

from __future__ import annotations

import math
from typing import Any, Final

from corpusprov.errors import DataError
from corpusprov.io.canonical import INT64_MIN, UINT64_MAX, canonical_line
from corpusprov.io.jsonl import LineError
from corpusprov.params.defaults import UNIFIED_FIELDS
from corpusprov.params.scales import ScaleEntry
from corpusprov.params.stages import AggregateParams
from corpusprov.stages.keys import NonFiniteKeyError, key_digest
from corpusprov.stages.rowpolicy import Verdict, apply_non_finite, check_line, native_context

__all__ = ["UNKNOWN_STD", "AggregateJudge", "native_aggregate_context", "sort_text"]

_FALLBACK_FIELDS: Final = ("\x00fallback", "src", "corpus_source")
UNKNOWN_STD: Final = math.inf
#: The unified row's fields the stage computes; the rest are copied with their defaults.
_COMPUTED: Final = frozenset({"mos", "mos_native", "mos_native_scale", "corpus_source"})
_COPIED: Final[tuple[tuple[str, type, Any], ...]] = tuple(
    (name, kind, default) for name, kind, default in UNIFIED_FIELDS if name not in _COMPUTED
)
_UNIFIED_NAMES: Final = frozenset(name for name, _, _ in UNIFIED_FIELDS)


class _BadFieldError(Exception):
    """A unified field whose value cannot take the field's type."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def _finite(value: int | float) -> bool:
    # math.isfinite() converts an int to float and overflows past 1e308: ints are finite.
    return type(value) is int or math.isfinite(value)


def _number(value: Any) -> tuple[int | float | None, bool]:
    """``(number, read_from_a_string)``; ``None`` when ``value`` is no number.

    Numeric strings (``"3.5"``) are numbers, as the original's ``float(...)`` reads them;
    booleans, null and other strings are not.
    """
    kind = type(value)
    if kind is int or kind is float:
        return value, False
    if kind is str:
        try:
            return float(value), True
        except ValueError:
            return None, False
    return None, False


def _copy_field(name: str, kind: type, default: Any, value: Any) -> Any:
    """One unified field: null/missing takes the default; else the value in the field's type."""
    if value is None:
        return default
    if kind is str:
        if type(value) is str:
            return value
        raise _BadFieldError(name, f"{name} {value!r} is not a string")
    if kind is int:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)  # 1920.0 -> 1920, as int() did in the original
        raise _BadFieldError(name, f"{name} {value!r} is not an integer")
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _BadFieldError(name, f"{name} {value!r} is too large for a float") from None
    raise _BadFieldError(name, f"{name} {value!r} is not a number")


class AggregateJudge:
    """Applies the aggregate policy to one parsed line (the stage's workers and ``trace`` share it)."""

    def __init__(self, params: AggregateParams) -> None:
        self.params = params
        self.required = frozenset(params.required_keys)
        self.key_fields = params.dedup_key
        self.unified_rows = params.output_row == "unified"

    def judge(
        self, line_no: int, row: Any, special: bool, error: LineError | None, display: str, override: str | None
    ) -> Verdict:
        """Judge one line: a usable row carries its label, scores, key digest and output row."""
        verdict = Verdict()
        params = self.params
        if not check_line(
            verdict,
            line_no,
            row,
            special,
            error,
            display,
            required=self.required,
            on_invalid_row=params.on_invalid_row,
            group="aggregate",
        ):
            return verdict
        if override is not None:
            label: Any = override
        else:
            source = row.get("corpus_source")
            # An empty or null corpus_source falls back to corpus, as in the original.
            label = source if source is not None and source != "" else row.get("corpus")
        if label is not None and not isinstance(label, str):
            return self._invalid(
                verdict,
                "invalid_label",
                f"corpus label {label!r} is not a string",
                display,
                line_no,
                row,
                special,
                "write the corpus label as a string, or set an override in aggregate.overrides",
            )
        scale = params.scales.get(label) if label is not None else None
        if label is None or scale is None:
            return verdict.reject(
                "unknown_corpus", f"corpus label {label!r} has no entry in aggregate.scales", row, special=special
            )
        resolved: str = label
        mos, mos_from_string = _number(row["mos"])
        if mos is None:
            return self._invalid(
                verdict,
                "invalid_mos",
                f"mos {row['mos']!r} is not a number",
                display,
                line_no,
                row,
                special,
                "write mos as a JSON number",
            )
        if not _finite(mos):
            shown = "NaN" if math.isnan(mos) else ("Infinity" if mos > 0 else "-Infinity")
            return verdict.reject("non_finite_mos", f"mos {shown} is not a finite number", row, special=special)
        # Ints compare with floats exactly, so a 400-digit mos is simply out of range.
        if not scale.contains(mos, params.range_slack):
            return verdict.reject(
                "bad_scale",
                f"mos {mos!r} is outside {label}'s {scale.native_min:g}-{scale.native_max:g} "
                f"scale (slack {params.range_slack:g})",
                row,
                special=special,
            )
        native = float(mos)
        verdict.label = resolved
        verdict.native = native
        verdict.unified = scale.to_unified(native)
        verdict.from_strings = int(mos_from_string)
        std, std_from_string = _number(row.get("mos_std_dev"))
        if self.unified_rows:
            try:
                verdict.row, verdict.special = self._unified_row(row, resolved, scale, verdict, std)
            except _BadFieldError as problem:
                return verdict.reject("bad_field", problem.message, row, special=special)
            verdict.dropped = not row.keys() <= _UNIFIED_NAMES
        verdict.from_strings += int(std_from_string)
        try:
            verdict.digest = self._key(row, resolved)
        except NonFiniteKeyError as exc:
            return verdict.reject(
                "non_finite_key", f"key field {exc.field_name!r} is not a finite number", row, special=True
            )
        if std is None or not _finite(std) or std <= 0:
            verdict.std = UNKNOWN_STD
        elif params.std_dev_units == "unified":
            # Std-devs of a 1-5 and a 0-100 corpus only compare on one axis.
            verdict.std = float(std) * 100.0 / scale.span()
        else:
            verdict.std = float(std)
        apply_non_finite(verdict, params.non_finite)
        return verdict

    def _key(self, row: dict[str, Any], label: str) -> bytes:
        """The dedup key as the original forms it: a field that is missing, not a string or
        empty is no identity, so such rows are keyed by ``(src, corpus_source)``."""
        if all(type(value) is str and value for value in map(row.get, self.key_fields)):
            return key_digest(row, self.key_fields)
        return key_digest({"\x00fallback": True, "src": row.get("src"), "corpus_source": label}, _FALLBACK_FIELDS)

    def sort_key(self, row: dict[str, Any], label: str) -> bytes:
        """Output order: corpus_source, src_sha256, then the original's key text (its
        ``__nokey__/<src>/<corpus>`` for keyless rows)."""
        values = [row.get(name) for name in self.key_fields]
        if all(type(value) is str and value for value in values):
            tail = b"\x00".join(map(sort_text, values))
        else:
            src = row.get("src")
            tail = f"__nokey__/{'' if src is None else src}/{label}".encode("utf-8", "surrogatepass")
        return b"\x00".join((label.encode("utf-8", "surrogatepass"), sort_text(row.get("src_sha256")), tail))

    def _unified_row(
        self, row: dict[str, Any], label: str, scale: ScaleEntry, verdict: Verdict, std: int | float | None
    ) -> tuple[dict[str, Any], bool]:
        """The original's 17-field row (``aggregated_at_utc`` aside: it lives in the manifest),
        and whether it holds values only the careful writer can write (NaN, 64+-bit ints)."""
        out: dict[str, Any] = {}
        special = False
        get = row.get
        for name, kind, default in _COPIED:
            value: Any = get(name)
            # Most fields already have their type: one test, no call (this runs for every row).
            if type(value) is not kind:
                if name == "mos_std_dev" and type(value) is str and std is not None:
                    value = std  # a numeric string, read as the number it spells
                value = _copy_field(name, kind, label if name == "corpus" else default, value)
            if kind is float:
                special = special or not math.isfinite(value)
            elif kind is int:
                special = special or not INT64_MIN <= value <= UINT64_MAX
            out[name] = value
        out["mos"] = verdict.unified
        out["mos_native"] = verdict.native
        out["mos_native_scale"] = scale.label
        out["corpus_source"] = label
        return out, special

    def _invalid(
        self, verdict: Verdict, reason: str, message: str, display: str, line_no: int, row: Any, special: bool, fix: str
    ) -> Verdict:
        if self.params.on_invalid_row == "fail":
            raise DataError(message, path=display, line=line_no, fix=f"{fix}; or set aggregate.on_invalid_row: reject")
        return verdict.reject(reason, message, row, special=special)


def sort_text(value: Any) -> bytes:
    """A sort-key component: strings as UTF-8, other values as canonical JSON, null as empty."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return canonical_line(value).rstrip(b"\n")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_text(value: Any) -> bytes | None:
    """``value``'s canonical JSON text, or ``None`` where orjson refuses it."""
    try:
        return canonical_line(value).rstrip(b"\n")
    except TypeError:
        return None


#: The field kinds as ``_bytescan.aggregate_rows`` numbers them.
_KIND_CODES: Final = {str: 0, int: 1, float: 2}


def native_aggregate_context(params: AggregateParams) -> tuple[object, ...]:
    """``_bytescan.aggregate_rows``'s context: the shared part (:func:`native_context`), then
    per label ``(native_min, native_max, slope, intercept, span, scale label, its JSON text)``,
    the range slack, whether std-devs compare on the unified axis, and the copied fields
    ``(name, kind code, the default's canonical text)``."""
    # A label or scale label that is no valid UTF-8 (a lone surrogate from an escape in the
    # YAML; orjson refuses it) is left out: its rows take the Python path, whatever it makes
    # of them.
    scales = {
        label: (
            float(scale.native_min),
            float(scale.native_max),
            scale.slope,
            scale.intercept,
            float(scale.span()),
            scale.label,
            json_text,
        )
        for label, scale in params.scales.items()
        if _utf8(label) and (json_text := _json_text(scale.label)) is not None
    }
    copied = tuple((name, _KIND_CODES[kind], canonical_line(default).rstrip(b"\n")) for name, kind, default in _COPIED)
    return (
        *native_context(params, params.dedup_key),
        scales,
        float(params.range_slack),
        params.std_dev_units == "unified",
        copied,
    )
