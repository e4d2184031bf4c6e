"""Every command explains itself: `--help` works and says what the command is for."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from corpusprov.cli import app


def _commands() -> list[tuple[str, ...]]:
    root: Any = typer.main.get_command(app)
    assert hasattr(root, "commands")  # a group (typer ships its own click)
    found: list[tuple[str, ...]] = []

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            found.append((*prefix, name))
            if hasattr(command, "commands"):
                walk(command, (*prefix, name))

    walk(root, ())
    return found


def test_the_expected_commands_exist() -> None:
    names = {" ".join(path) for path in _commands()}
    assert names >= {
        "merge",
        "aggregate",
        "sample",
        "scales",
        "verify",
        "verify-import",
        "replay",
        "trace",
        "diff",
        "manifest",
        "manifest show",
        "manifest validate",
    }


@pytest.mark.parametrize("path", _commands(), ids=lambda path: " ".join(path))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    usage, _, rest = result.output.partition("\n\n")
    assert usage.startswith("Usage: ")
    assert len(rest.strip().splitlines()[0]) > 20, f"{' '.join(path)} has no description"


@pytest.mark.parametrize("path", _commands(), ids=lambda path: " ".join(path))
def test_help_names_arguments_and_values_by_metavar(path: tuple[str, ...]) -> None:
    output = CliRunner().invoke(app, [*path, "--help"], terminal_width=200).output
    for fragment in ("{", "<list", "<int", "<str>", "<path>", "<Path>", "range>"):
        assert fragment not in output, f"{' '.join(path)} --help shows {fragment!r}:\n{output}"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("corpusprov ")
