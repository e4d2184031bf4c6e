"""The commands that prove: verify, verify-import, replay, trace, diff."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from corpusprov.cli.base import app, boundary, repo_dir
from corpusprov.cli.help import MetavarCommand
from corpusprov.reporoot import repo_root, root_relative

__all__ = ["diff", "replay", "trace", "verify", "verify_import"]


@app.command(cls=MetavarCommand)
def verify(
    stages: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[STAGE]...", help="Stages to check [default: every stage with a manifest].", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    no_rehash: Annotated[
        bool, typer.Option("--no-rehash", help="Compare recorded hashes only; check file sizes, not contents.")
    ] = False,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also check every lineage link down the chain: each upstream manifest's hash, and that "
            "its output is the bytes this build read.",
        ),
    ] = False,
) -> None:
    """Prove dvc.lock, the manifests and the bytes on disk agree (anywhere in the repository)."""
    import json

    from corpusprov.prove.verify import verify as run_verify
    from corpusprov.render import render_findings

    with boundary():
        report = run_verify(repo_dir(), tuple(stages or ()), rehash=not no_rehash, deep=deep)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            typer.echo(render_findings(report))
        if not report.ok:
            raise typer.Exit(1)


@app.command("verify-import", cls=MetavarCommand)
def verify_import(
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """In a repository that `dvc import`ed a corpus and its manifest: prove the bytes match."""
    import json

    from corpusprov.prove.verify_import import verify_imports
    from corpusprov.render import render_findings

    with boundary():
        report = verify_imports(repo_root(Path.cwd(), "verify-import"))
        typer.echo(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
            if as_json
            else render_findings(
                report,
                command="verify-import",
                subject="imported corpora, their manifests and .dvc files",
                unit="imported manifests",
            )
        )
        if not report.ok:
            raise typer.Exit(1)


@app.command(cls=MetavarCommand)
def replay(
    manifest: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Manifest to replay.")],
    keep: Annotated[
        Path | None,
        typer.Option("--keep", metavar="DIR", help="Keep the replayed outputs in this (empty or new) folder."),
    ] = None,
) -> None:
    """Re-run a manifest's recorded command and params on its inputs; exit 0 only if reproduced."""
    from corpusprov.prove.replay import replay as run_replay
    from corpusprov.render import render_replay

    with boundary():
        # Manifests record repo-relative paths: replay from the root, whatever the working directory.
        root = repo_dir()
        recorded = Path(root_relative(str(manifest), Path.cwd(), root))
        keep = Path(os.path.abspath(keep)) if keep is not None else None
        os.chdir(root)
        result = run_replay(recorded, keep)
        typer.echo(render_replay(result))
        if not result.reproduced:
            raise typer.Exit(1)


@app.command(cls=MetavarCommand)
def trace(
    stage: Annotated[str, typer.Argument(metavar="STAGE", help="dvc.yaml stage (merge, aggregate, ...).")],
    key: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...",
            help="KEY=VALUE for dedup key fields; values are read as JSON when they parse, else as strings.",
        ),
    ],
) -> None:
    """Every input occurrence of a dedup key, which one won, and the rule that decided."""
    from corpusprov.prove.trace import trace as run_trace
    from corpusprov.render import render_trace

    with boundary():
        result = run_trace(repo_dir(), stage, key)
        typer.echo(render_trace(result))
        if not result.occurrences:
            raise typer.Exit(1)


@app.command(cls=MetavarCommand)
def diff(
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            help="Build A: a manifest path, REV:PATH, or a git revision / "
            "experiment name (then every stage with a manifest).",
        ),
    ],
    b: Annotated[str, typer.Argument(metavar="B", help="Build B, in the same forms.")],
    stage: Annotated[
        list[str] | None, typer.Option("--stage", metavar="STAGE", help="Only this stage (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when the builds differ.")] = False,
) -> None:
    """What changed between two builds: inputs, params (dotted keys), counters with deltas."""
    import json

    from corpusprov.prove.diff import diff_builds
    from corpusprov.render import render_diff

    with boundary():
        root = repo_dir()
        a, b = (root_relative(spec, Path.cwd(), root) for spec in (a, b))
        results = diff_builds(root, a, b, tuple(stage or ()))
        if as_json:
            typer.echo(json.dumps([item.to_dict() for item in results], indent=2, ensure_ascii=False))
        else:
            typer.echo(render_diff(results))
        if exit_code and not all(item.same for item in results):
            raise typer.Exit(1)
