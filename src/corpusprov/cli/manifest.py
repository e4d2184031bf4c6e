"""`corpusprov manifest show|validate`: read and check manifest sidecars."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corpusprov.cli.base import boundary, manifest_app
from corpusprov.cli.help import MetavarCommand
from corpusprov.errors import CorpusprovError
from corpusprov.io.inputs import display_path

__all__ = ["manifest_show", "manifest_validate"]


@manifest_app.command("show", cls=MetavarCommand)
def manifest_show(path: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Manifest JSON.")]) -> None:
    """Print a manifest for a person: what went in, what came out, how."""
    from corpusprov.record.manifest import load_manifest
    from corpusprov.render import render_manifest

    with boundary():
        manifest, _ = load_manifest(path, display_path(path))
        typer.echo(render_manifest(manifest))


@manifest_app.command("validate", cls=MetavarCommand)
def manifest_validate(
    paths: Annotated[list[Path], typer.Argument(metavar="MANIFEST...", help="Manifest JSON files.")],
) -> None:
    """Check manifests against the shipped JSON Schema and check that counters add up."""
    from corpusprov.prove.verify import kind_accounting
    from corpusprov.record.manifest import accounting_problems, load_manifest

    with boundary():
        # Every path is checked and reported (one line each), so one bad file does not hide another.
        worst = 0
        for path in paths:
            display = display_path(path)
            try:
                manifest, _ = load_manifest(path, display)
            except CorpusprovError as exc:
                typer.echo(f"corpusprov: error: {exc}", err=True)
                worst = max(worst, exc.exit_code)
                continue
            problems = accounting_problems(manifest, kind_accounting(manifest.kind))
            if problems:
                worst = max(worst, 1)
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                typer.echo(
                    f"corpusprov: error: {display}: counters do not add up: {problems[0]}{more}; "
                    "restore the manifest with `dvc checkout` or re-run the stage",
                    err=True,
                )
            else:
                typer.echo(f"{display}: valid ({manifest.kind}, manifest v{manifest.manifest_version})")
        if worst:
            raise typer.Exit(worst)
