"""The code says what it is: module docstrings, no private names across modules, a Layout that matches."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "corpusprov"
MODULES = sorted(PACKAGE.rglob("*.py"))
SOURCES = [*MODULES, *sorted((REPO_ROOT / "tests").glob("*.py")), *sorted((REPO_ROOT / "bench").glob("*.py"))]


def _name(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_every_module_opens_with_a_one_line_docstring(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{_name(path)} has no module docstring"
    assert docstring.splitlines()[0].strip(), f"{_name(path)}: the docstring's first line is empty"


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_no_private_name_is_imported_from_another_module(path: Path) -> None:
    """`from corpusprov.x import _y` couples a module to another's internals: make it public or move it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("corpusprov", "tests")):
            private = [
                alias.name for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
            assert not private, f"{_name(path)}:{node.lineno}: imports {private} from {node.module}"


def _layout_modules() -> set[str]:
    """The package modules the README's Layout names, as paths under src/corpusprov/ (read from its indentation).

    A folder entry (`io/`) opens a level; the `__init__.py` of a folder with listed modules counts as listed
    (the README says each subpackage's `__init__.py` names its layer); a line indented 20+ columns continues
    the previous entry's text.
    """
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    layout = re.search(r"^## Layout\n+```\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert layout, "README has no Layout section"
    lines = layout.group(1).split("src/corpusprov/", 1)[1].splitlines()[1:]
    named: set[str] = set()
    folders: list[tuple[int, str]] = []  # (indent, "name/") from the package root down
    for line in lines:
        if line and not line.startswith(" "):
            break  # the next top-level entry: the package ends here
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent >= 20:
            entry = body
        else:
            folders = [(level, name) for level, name in folders if level < indent]
            entry = body.split("  ")[0]
        prefix = "".join(name for _, name in folders)
        if entry.endswith("/"):
            folders.append((indent, entry))
            entry = body  # a folder's own line may name its files (sample/)
            prefix += folders[-1][1]
        named.update(prefix + name for name in re.findall(r"\w+\.py", entry))
    return named | {f"{path.rsplit('/', 1)[0]}/__init__.py" for path in named if "/" in path}


def test_readme_layout_matches_the_package_tree() -> None:
    """Every module is listed under its own folder, and every listed module exists."""
    actual = {path.relative_to(PACKAGE).as_posix() for path in MODULES}
    listed = _layout_modules()
    assert sorted(actual - listed) == [], "README Layout omits these modules"
    assert sorted(listed - actual) == [], "README Layout lists modules that do not exist"


def test_no_module_is_past_400_lines() -> None:
    """A module past ~400 lines is asking to split (STYLE.md)."""
    long = {
        _name(path): count for path in MODULES if (count := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {} or set(long) <= KNOWN_LONG, f"modules past 400 lines: {long}"


#: Modules still past 400 lines, to be split; the list may only shrink (issue 14 emptied it).
KNOWN_LONG: set[str] = set()
