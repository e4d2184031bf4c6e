"""The typer apps and the one boundary where errors become a message and an exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from corpusprov.errors import CorpusprovError
from corpusprov.reporoot import find_root

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "Terminated",
    "app",
    "argv",
    "boundary",
    "manifest_app",
    "repo_dir",
]

app = typer.Typer(
    name="corpusprov",
    help="Provenance-stamped merge and aggregate of video-quality corpus JSONL shards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
manifest_app = typer.Typer(help="Read and check manifest sidecars.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(manifest_app, name="manifest")

#: Exit code for an interrupted run (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Exit code for a run ended by SIGTERM (128 + 15).
EXIT_TERMINATED = 143
#: Exit code for a bug in corpusprov itself (EX_SOFTWARE).
EXIT_INTERNAL = 70


class Terminated(BaseException):
    """SIGTERM arrived: unwind like an interrupt, so staged outputs are removed."""


@contextlib.contextmanager
def boundary() -> Iterator[None]:
    """The one place where errors turn into a message on stderr and an exit code."""
    try:
        yield
    except CorpusprovError as exc:
        typer.echo(f"corpusprov: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("corpusprov: interrupted; no output was written", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Terminated:
        typer.echo("corpusprov: terminated; no output was written", err=True)
        raise typer.Exit(EXIT_TERMINATED) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get("CORPUSPROV_DEBUG"):
            raise
        typer.echo(
            f"corpusprov: internal error: {type(exc).__name__}: {exc} "
            "(a bug; re-run with CORPUSPROV_DEBUG=1 for the traceback and report it)",
            err=True,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def repo_dir() -> Path:
    """The repository root above the working directory (as git and dvc find it), else the working directory."""
    return find_root(Path.cwd()) or Path.cwd()


def argv() -> tuple[str, ...]:
    """The command line as the manifest records it."""
    return ("corpusprov", *sys.argv[1:])
