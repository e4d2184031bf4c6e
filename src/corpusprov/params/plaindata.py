"""YAML nodes to plain Python data: no tags that construct objects, a bound on alias expansion, line:column errors."""

from __future__ import annotations

from typing import Any, Final

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from corpusprov.errors import ParamsError

__all__ = ["NODE_BUDGET", "plain_data", "yaml_position"]

_PLAIN_TAGS: Final = {
    None,
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}


def yaml_position(node: Any, key: Any) -> tuple[int | None, int | None]:
    try:
        line, column = node.lc.key(key) if isinstance(node, CommentedMap) else node.lc.item(key)
    except (AttributeError, KeyError, IndexError, TypeError):
        return None, None
    return int(line) + 1, int(column) + 1


#: Values a YAML document may expand to (aliases included): params.yaml, dvc.yaml, dvc.lock, .dvc.
NODE_BUDGET: Final = 100_000


class _Budget:
    """Bounds alias expansion: a few anchors can otherwise expand to billions of nodes."""

    LIMIT = NODE_BUDGET

    def __init__(self) -> None:
        self.nodes = 0
        self.path: set[int] = set()
        self.seen: dict[int, int] = {}
        """How often each container was reached: more than once means an alias."""


def _plain(node: Any, display: str, parent: Any, key: Any, budget: _Budget) -> Any:
    """Plain Python data, refusing any tag that would construct an object."""
    budget.nodes += 1
    if budget.nodes > _Budget.LIMIT:
        aliased = any(count > 1 for count in budget.seen.values())
        how = "once YAML aliases are expanded" if aliased else "(a very long list or mapping)"
        raise ParamsError(
            f"params hold more than {_Budget.LIMIT} values {how}",
            path=display,
            fix="params.yaml holds a few settings" + ("; remove the alias chain" if aliased else ""),
        )
    if isinstance(node, (CommentedMap, CommentedSeq)):
        if id(node) in budget.path:
            line, column = yaml_position(parent, key) if parent is not None else (None, None)
            raise ParamsError(
                "a YAML alias refers to itself",
                path=display,
                line=line,
                column=column,
                fix="remove the recursive alias",
            )
        budget.path.add(id(node))
        budget.seen[id(node)] = budget.seen.get(id(node), 0) + 1
        try:
            return _plain_container(node, display, parent, key, budget)
        finally:
            budget.path.discard(id(node))
    return _plain_scalar(node, display, parent, key)


def _plain_container(node: Any, display: str, parent: Any, key: Any, budget: _Budget) -> Any:
    _check_tag(node, display, parent, key)
    if isinstance(node, CommentedMap):
        return {str(child_key): _plain(child, display, node, child_key, budget) for child_key, child in node.items()}
    return [_plain(child, display, node, index, budget) for index, child in enumerate(node)]


def _check_tag(node: Any, display: str, parent: Any, key: Any) -> None:
    tag = getattr(node, "tag", None)
    tag_value = getattr(tag, "value", tag) if tag is not None else None
    if tag_value == "tag:yaml.org,2002:str" and type(node).__name__ == "TaggedScalar":
        return  # `!!str x` is the string "x" (see _plain_scalar), as `x` or `"x"` is
    if tag_value not in _PLAIN_TAGS or type(node).__name__ == "TaggedScalar":
        line, column = yaml_position(parent, key) if parent is not None else (None, None)
        raise ParamsError(
            f"YAML tag {tag_value} is not allowed",
            path=display,
            line=line,
            column=column,
            fix="params hold plain values only; remove the tag",
        )


def _plain_scalar(node: Any, display: str, parent: Any, key: Any) -> Any:
    _check_tag(node, display, parent, key)
    if type(node).__name__ == "TaggedScalar":  # `!!str x`, the only tagged scalar _check_tag lets by
        text = str(node.value)
        if parent is not None:
            parent[key] = text  # the typed readers read the tree: give them the string
        return text
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if node is None or isinstance(node, str):
        return None if node is None else str(node)
    line, column = yaml_position(parent, key) if parent is not None else (None, None)
    raise ParamsError(
        f"unsupported YAML value {type(node).__name__}",
        path=display,
        line=line,
        column=column,
        fix="use plain strings, numbers, booleans, lists and mappings",
    )


def plain_data(tree: Any, display: str) -> Any:
    """The document ``tree`` as plain dicts, lists and scalars; raises :class:`ParamsError` for a tag or a blow-up."""
    return _plain(tree, display, None, None, _Budget())
