"""Command help that names arguments by their metavar: ``INPUT...``, not typer's ``{inputs}... <list[str]>``."""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand

__all__ = ["MetavarCommand"]


class MetavarCommand(TyperCommand):
    """A command whose help names arguments by their metavar (``INPUT...``), not ``{inputs}... <list[str]>``."""

    # typer vendors click (typer._click), so parameters are told apart by param_type_name.
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] INPUT...``: each argument as its metavar."""
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_metavar(param) for param in self.get_params(ctx) if param.param_type_name == "argument"]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Arguments by metavar, then options, as typer lays them out."""
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((_metavar(param), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _metavar(param: Any) -> str:
    """An argument's metavar, else its name in capitals."""
    return str(param.metavar or (param.name or "").upper())
