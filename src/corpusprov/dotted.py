"""Nested params and counters as dotted keys, and what changed between two of them."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["ABSENT", "changes", "flatten"]

#: Stands for a key one side does not have.
ABSENT: Final = "(absent)"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay whole values."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
        if not value and prefix:
            flat[prefix] = {}
        return flat
    return {prefix: value}


def changes(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every dotted key whose value differs, as ``(key, old, new)``, sorted by key."""
    before = flatten(old, prefix)
    after = flatten(new, prefix)
    result = []
    for key in sorted(set(before) | set(after)):
        left = before.get(key, ABSENT)
        right = after.get(key, ABSENT)
        if left != right or type(left) is not type(right):
            result.append((key, left, right))
    return result
