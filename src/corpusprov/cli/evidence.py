"""The commands that carry the evidence to other tools: lineage, attest, verify-attestation, croissant, cite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corpusprov.cli.base import app, boundary, repo_dir
from corpusprov.cli.help import MetavarCommand
from corpusprov.cli.options import JsonOpt, ManifestArg

__all__: list[str] = []

# Each command below: parse, call its core in corpusprov.evidence, render; errors through `boundary()`.


@app.command(cls=MetavarCommand)
def lineage(
    path: Annotated[str, typer.Argument(metavar="PATH", help="An output (corpus JSONL) or its manifest.")],
    as_json: JsonOpt = False,
) -> None:
    """The chain of builds behind a file: each manifest down to the shards without one."""
    import json

    from corpusprov.prove.lineage import lineage as run_lineage
    from corpusprov.render import render_lineage
    from corpusprov.reporoot import root_relative

    with boundary():
        root = repo_dir()
        node = run_lineage(root, root_relative(path, Path.cwd(), root))
        typer.echo(json.dumps(node.to_dict(), indent=2, ensure_ascii=False) if as_json else render_lineage(node))


@app.command(cls=MetavarCommand)
def croissant(
    manifest: ManifestArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Croissant JSON-LD to write [default: the corpus path with .jsonl -> .croissant.json].",
        ),
    ] = None,
) -> None:
    """Describe a corpus as Croissant 1.0 JSON-LD: its file, row fields, sources, and its manifest as provenance."""
    import os

    from corpusprov.evidence.croissant import CONFORMS_TO, build_croissant, write_croissant
    from corpusprov.reporoot import root_relative

    with boundary():
        # Manifests record repo-relative paths: read them from the root, whatever the working directory.
        root = repo_dir()
        recorded = root / root_relative(str(manifest), Path.cwd(), root)
        target = Path(os.path.abspath(output)) if output is not None else None
        built = build_croissant(recorded, root, target)
        write_croissant(built)
        shown = os.path.relpath(built.target, Path.cwd())
        typer.echo(
            f"croissant: wrote {shown} (Croissant {CONFORMS_TO.rsplit('/', 1)[-1]}): RecordSet {built.record_set}, "
            f"{built.rows} records x {built.fields} fields"
        )
