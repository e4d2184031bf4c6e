"""The commands that carry the evidence to other tools: lineage, attest, verify-attestation, croissant, cite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

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


@app.command(cls=MetavarCommand)
def cite(
    manifest: ManifestArg,
    output_format: Annotated[
        Literal["markdown", "bibtex", "json"],
        typer.Option("--format", metavar="FORMAT", help="markdown (a model card section), bibtex or json."),
    ] = "markdown",
) -> None:
    """Cite a built corpus for a model card: file, commit, dvc.lock, source corpora, licences, cleaning."""
    from corpusprov.evidence.cite import build_citation, render_bibtex, render_json, render_markdown
    from corpusprov.reporoot import root_relative

    renderers = {"markdown": render_markdown, "bibtex": render_bibtex, "json": render_json}
    with boundary():
        # Manifests record repo-relative paths: read them from the root, whatever the working directory.
        root = repo_dir()
        citation = build_citation(root / root_relative(str(manifest), Path.cwd(), root), root)
        typer.echo(renderers[output_format](citation), nl=False)


@app.command(cls=MetavarCommand)
def attest(
    manifest: ManifestArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Attestation to write [default: MANIFEST with .manifest.json -> .intoto.json, "
            "or .intoto.dsse.json when signed].",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", metavar="KEYFILE", help="Ed25519 private key (PEM, unencrypted): write a signed DSSE envelope."
        ),
    ] = None,
) -> None:
    """Write an in-toto Statement v1 (SLSA Provenance v1) for a manifest's outputs; signed with --key."""
    import os

    from corpusprov.evidence.attest import build_attestation, write_attestation
    from corpusprov.reporoot import root_relative

    with boundary():
        # Manifests record repo-relative paths: read them from the root, whatever the working directory.
        root = repo_dir()
        recorded = root / root_relative(str(manifest), Path.cwd(), root)
        target = Path(os.path.abspath(output)) if output is not None else None
        built = build_attestation(recorded, root, target, key)
        write_attestation(built)
        signed = f"signed (DSSE, Ed25519 key {built.keyid})" if built.keyid else "unsigned"
        typer.echo(
            f"attest: wrote {os.path.relpath(built.target, Path.cwd())} "
            f"(in-toto Statement v1, SLSA Provenance v1): {built.subjects} subjects, {signed}"
        )


@app.command("verify-attestation", cls=MetavarCommand)
def verify_attestation(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Attestation: a DSSE envelope or a bare statement.")],
    pubkey: Annotated[
        Path | None,
        typer.Option("--pubkey", metavar="KEY", help="Ed25519 public key (PEM): the attestation must be signed by it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check an attestation: its signature (with --pubkey), its shape, and every subject's bytes on disk."""
    import json

    from corpusprov.evidence.attestcheck import render_attestation_report
    from corpusprov.evidence.attestcheck import verify_attestation as run_verify_attestation

    with boundary():
        report = run_verify_attestation(file, pubkey, repo_dir())
        typer.echo(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if as_json else render_attestation_report(report)
        )
        if not report.ok:
            raise typer.Exit(1)
