"""params.yaml: safe loading, and validation that points at the offending line and column."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from corpusprov.errors import ParamsError
from corpusprov.io.hashing import Digest
from corpusprov.params.plaindata import plain_data, yaml_position

__all__ = [
    "MAX_MAGNITUDE",
    "GroupReader",
    "ParamsFile",
    "load_params",
    "params_from_values",
]

#: A policy vocabulary: GroupReader.choice returns the Literal its choices spell.
Choice = TypeVar("Choice", bound=str)


@dataclass(frozen=True)
class ParamsFile:
    """A loaded params file: its bytes' digest, plain data, and the tree for positions."""

    display: str | None
    """Repo-relative path, or ``None`` when no file exists and defaults apply."""
    digest: Digest | None
    """Hash of the file's bytes."""
    data: dict[str, Any]
    """The whole document as plain dicts, lists and scalars."""
    tree: Any = field(repr=False, compare=False)
    """The ruamel round-trip tree (line and column of every key)."""

    def group(self, name: str) -> GroupReader:
        """A reader over one top-level group (an empty one when absent)."""
        node = self.tree.get(name) if isinstance(self.tree, CommentedMap) else None
        if node is None:
            node = CommentedMap()
        where = self.display or "params.yaml"
        if not isinstance(node, CommentedMap):
            line, column = yaml_position(self.tree, name)
            raise ParamsError(
                f"`{name}` must be a mapping",
                path=where,
                line=line,
                column=column,
                fix=f"write {name}'s settings as `key: value` lines under it",
            )
        return GroupReader(node, name, where)

    def group_values(self, name: str) -> dict[str, Any]:
        """The plain value of one group, as DVC records it in ``dvc.lock``."""
        value = self.data.get(name, {})
        return dict(value) if isinstance(value, dict) else {}


def load_params(path: Path, display: str, *, required: bool) -> ParamsFile:
    """Load ``path`` safely; a missing optional file means built-in defaults."""
    if not path.exists():
        if required:
            raise ParamsError(
                "params file does not exist", path=display, fix="pass --params PATH or create it from the template"
            )
        return ParamsFile(None, None, {}, CommentedMap())
    if not path.is_file():
        raise ParamsError("params path is not a file", path=display, fix="pass --params with the path of a YAML file")
    raw = path.read_bytes()
    digest = Digest(len(raw), hashlib.sha256(raw).hexdigest(), hashlib.md5(raw).hexdigest())  # noqa: S324 -- DVC's content id
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(f"not UTF-8 (byte {exc.start + 1})", path=display, fix="save the file as UTF-8") from None
    yaml = YAML(typ="rt", pure=True)
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "malformed YAML").strip()
        raise ParamsError(
            f"malformed YAML: {problem}",
            path=display,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            fix="fix the YAML syntax at that spot (a missing bracket, quote or indentation?)",
        ) from None
    except YAMLError as exc:
        raise ParamsError(
            f"malformed YAML: {str(exc).splitlines()[0]}", path=display, fix="fix the YAML syntax"
        ) from None
    except (ValueError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        # ruamel raises these for built-in tags with impossible values (`!!float abc`).
        raise ParamsError(
            f"malformed YAML value: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            path=display,
            fix="remove the explicit !! tag or fix its value",
        ) from None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ParamsError(
            "the top level must be a mapping of groups",
            path=display,
            line=1,
            fix="params.yaml maps stage names (sample, merge, aggregate) to settings",
        )
    try:
        data = cast("dict[str, Any]", plain_data(tree, display))
    except RecursionError:
        raise ParamsError("YAML nested too deeply", path=display, fix="flatten params.yaml") from None
    return ParamsFile(display, digest, data, tree)


def params_from_values(group: str, values: dict[str, Any], display: str | None) -> ParamsFile:
    """A params file holding one group's recorded values (for replay and trace)."""
    import io

    buffer = io.StringIO()
    YAML(typ="safe", pure=True).dump({group: values}, buffer)
    tree = YAML(typ="rt", pure=True).load(buffer.getvalue())
    return ParamsFile(display, None, {group: values}, tree)


#: Largest magnitude a numeric param may have unless its reader allows more: scale bounds and
#: slacks are small numbers, and a bound near 1e308 makes `max - min` overflow to infinity.
MAX_MAGNITUDE: Final = 1e12


class GroupReader:
    """Typed access to one mapping in params.yaml; every error names line and column."""

    def __init__(self, node: CommentedMap, dotted: str, display: str) -> None:
        self.node = node
        self.dotted = dotted
        self.display = display
        self._seen: set[str] = set()

    def error(self, key: str | None, message: str, fix: str | None = None) -> ParamsError:
        """A ParamsError positioned at ``key`` (or at the group itself)."""
        line, column = yaml_position(self.node, key) if key is not None else (None, None)
        if line is None:
            # A group missing from the file has no position: point at nothing rather than guess.
            group_line = getattr(self.node.lc, "line", None)
            line, column = (group_line + 1 if isinstance(group_line, int) else None), None
        shown = key if key is None or key.isprintable() else repr(key)
        name = f"{self.dotted}.{shown}" if key else self.dotted
        return ParamsError(
            f"{name}: {message}",
            path=self.display,
            line=line,
            column=column,
            fix=fix or f'fix {name} (README, "Parameters", lists every key)',
        )

    def has(self, key: str) -> bool:
        """Whether the key is present."""
        return key in self.node

    def _absent(self, key: str, value: Any) -> bool:
        """True when the key is missing; a key written with no value is an error."""
        if value is not None:
            return False
        if key in self.node:
            raise self.error(key, "has no value", fix="give a value or delete the line")
        return True

    def raw(self, key: str) -> Any:
        """The value at ``key`` as written, marking it as known."""
        self._seen.add(key)
        return self.node.get(key)

    def choice(self, key: str, choices: tuple[Choice, ...], default: Choice) -> Choice:
        """A string that must be one of ``choices`` (typed by them: a policy ``Literal``)."""
        value = self.raw(key)
        if value is None and key in self.node:
            for choice in choices:
                if choice == "null":
                    return choice  # YAML reads a bare `null` as no value; here it is a choice
        if self._absent(key, value):
            return default
        for choice in choices:
            if choice == value:
                return choice
        raise self.error(key, f"must be one of {', '.join(choices)} (found {value!r})")

    def string(self, key: str, default: str | None = None) -> str | None:
        """An optional string."""
        value = self.raw(key)
        if self._absent(key, value):
            return default
        if not isinstance(value, str):
            raise self.error(key, f"must be a string (found {value!r})")
        return str(value)

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        magnitude: float = MAX_MAGNITUDE,
    ) -> float:
        """A finite number (int or float) within ``minimum``/``maximum`` and at most ``magnitude`` in size.

        NaN and infinities are never params: NaN fails every comparison (a NaN slack rejects
        every row) and an infinite bound maps every score to 0.
        """
        value = self.raw(key)
        if self._absent(key, value):
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number (found {value!r})")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(
                key,
                f"must be a finite number (found {value})",
                fix=f"write a plain number for {self.dotted}.{key}; NaN and infinities are not params",
            )
        if abs(value) > magnitude:
            shown = f"{value:.6g}" if isinstance(value, float) else f"an integer of {value.bit_length()} bits"
            raise self.error(
                key,
                f"magnitude ({shown}) is beyond {magnitude:g}: not a sane setting",
                fix=f"write a number between {-magnitude:g} and {magnitude:g}",
            )
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum} (found {value})")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum} (found {value})")
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        """An integer."""
        value = self.raw(key)
        if self._absent(key, value):
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer (found {value!r})")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum} (found {value})")
        return int(value)

    def boolean(self, key: str, default: bool) -> bool:
        """A boolean."""
        value = self.raw(key)
        if self._absent(key, value):
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false (found {value!r})")
        return bool(value)

    def names(self, key: str, default: Sequence[str], *, allow_empty: bool = False) -> tuple[str, ...]:
        """A list of distinct non-empty strings."""
        value = self.raw(key)
        if self._absent(key, value):
            return tuple(default)
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.error(key, "must be a list of field names")
        if not value and not allow_empty:
            raise self.error(key, "must name at least one field")
        seen: set[str] = set()
        for item in value:
            if item in seen:
                raise self.error(key, f"names {item!r} twice")
            seen.add(item)
        return tuple(str(item) for item in value)

    def sub(self, key: str) -> GroupReader:
        """The nested mapping at ``key`` (empty when absent)."""
        value = self.raw(key)
        if value is None:
            value = CommentedMap()
        if not isinstance(value, CommentedMap):
            raise self.error(key, "must be a mapping")
        return GroupReader(value, f"{self.dotted}.{key}", self.display)

    def finish(self) -> None:
        """Refuse keys nobody asked for: a typo must not silently mean the default."""
        for key in self.node:
            if str(key) not in self._seen:
                known = ", ".join(sorted(self._seen))
                raise self.error(str(key), "unknown key", fix=f"known keys here: {known}")
