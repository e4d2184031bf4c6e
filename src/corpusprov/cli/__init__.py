"""The ``corpusprov`` command line: parse, call the core, render; errors become exit codes in cli.base."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from corpusprov import __version__
from corpusprov.cli.base import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, app
from corpusprov.interrupts import raise_or_hold

# Each module registers its commands on `app`; help lists them in this order.
# isort: off
from corpusprov.cli import stages, prove, manifest, evidence
# isort: on

__all__ = ["app", "main"]

_COMMANDS = (stages, prove, manifest, evidence)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"corpusprov {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Provenance-stamped merge and aggregate of video-quality corpus JSONL shards."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise_or_hold(Terminated())


def _on_sigint(_signum: int, _frame: object) -> None:
    raise_or_hold(KeyboardInterrupt())


def main() -> None:
    """Console-script entry point."""
    import signal

    # A file-size limit should fail a write with EFBIG (a clear error, temp files removed)
    # rather than kill the process; SIGTERM should unwind like Ctrl-C.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Python's own Ctrl-C handler, made to wait while the worker pool must not be cut in half
    # (corpusprov.interrupts); an ignored SIGINT (nohup, a background job) stays ignored.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    # A signal can land before a command's own boundary is entered (while typer parses the
    # arguments or a command imports its modules): it ends the run the same way.
    try:
        # Process-wide settings, so they belong to the program, not to the library it calls.
        from corpusprov.stages.workers import keep_freed_memory, quiet_gc

        quiet_gc()
        keep_freed_memory()
        app()
    except Terminated:
        sys.stderr.write("corpusprov: terminated; no output was written\n")
        sys.exit(EXIT_TERMINATED)
    except KeyboardInterrupt:
        sys.stderr.write("corpusprov: interrupted; no output was written\n")
        sys.exit(EXIT_INTERRUPTED)
