"""The ``corpusprov`` command line: parse, call the core, render; errors become exit codes here."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from corpusprov import __version__
from corpusprov.clihelp import MetavarCommand
from corpusprov.errors import CorpusprovError
from corpusprov.io.inputs import display_path
from corpusprov.reporoot import find_root, repo_root, root_relative

__all__ = ["app", "main"]


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
def _boundary() -> Iterator[None]:
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


def _repo_dir() -> Path:
    """The repository root above the working directory (as git and dvc find it), else the working directory."""
    return find_root(Path.cwd()) or Path.cwd()


def _argv() -> tuple[str, ...]:
    return ("corpusprov", *sys.argv[1:])


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


InputsArg = Annotated[
    list[str],
    typer.Argument(metavar="INPUT...", help="JSONL shards, or folders of *.jsonl (sorted).", show_default=False),
]
OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", metavar="OUT", help="Corpus JSONL to write.", show_default=False)
]
ParamsOpt = Annotated[
    Path | None,
    typer.Option(
        "--params",
        metavar="PATH",
        help="params.yaml to read [default: params.yaml if present, else built-in defaults].",
    ),
]
ManifestOpt = Annotated[
    Path | None, typer.Option("--manifest-out", metavar="PATH", help="Manifest path [default: OUTPUT.manifest.json].")
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option("--rejects-out", metavar="PATH", help="Rejects JSONL [default: OUTPUT stem + .rejects.jsonl]."),
]
PlotsOpt = Annotated[
    Path | None,
    typer.Option(
        "--plots-dir", metavar="DIR", help="Folder for pre-binned plot data JSON (`dvc plots`) [default: none]."
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        help="Worker processes for parsing "
        "[default: every core for inputs over 32 MiB, else 1]; "
        "the output bytes do not depend on it.",
    ),
]
OutsideOpt = Annotated[
    bool,
    typer.Option(
        "--allow-outside-repo",
        help="Allow paths outside the working directory (also through "
        "symbolic links); the manifest then records them as "
        "<outside-repo>/NAME.",
    ),
]
MetricsOpt = Annotated[
    Path | None,
    typer.Option("--metrics-out", metavar="PATH", help="Scalar metrics JSON for `dvc exp show` [default: none]."),
]


def _run_stage(kind: str, inputs: list[str], output: Path, params: Path | None, **options: Any) -> None:
    """Run ``merge`` or ``aggregate`` with progress on stderr and a summary on stdout."""
    from corpusprov.progress import stage_progress
    from corpusprov.render import render_stage_summary
    from corpusprov.stages.run import StageRequest, run_aggregate, run_merge

    runner = run_merge if kind == "merge" else run_aggregate
    on_progress, end_progress = stage_progress(kind)
    with _boundary():
        from corpusprov.io.inputs import check_output_path

        # Before the stage derives the sidecar names from it (`.` has no name to extend).
        check_output_path(output)
        report = runner(
            StageRequest(
                inputs=tuple(inputs),
                output=output,
                params_path=params or Path("params.yaml"),
                params_explicit=params is not None,
                argv=_argv(),
                progress=on_progress,
                **options,
            )
        )
        end_progress()
        typer.echo(render_stage_summary(kind, report))


@app.command(cls=MetavarCommand)
def merge(
    inputs: InputsArg,
    output: OutputOpt,
    params: ParamsOpt = None,
    manifest_out: ManifestOpt = None,
    rejects_out: RejectsOpt = None,
    metrics_out: MetricsOpt = None,
    plots_dir: PlotsOpt = None,
    allow_outside_repo: OutsideOpt = False,
    jobs: JobsOpt = None,
) -> None:
    """Merge encode-grid shards: validate required keys, dedup on the natural key."""
    _run_stage(
        "merge",
        inputs,
        output,
        params,
        manifest_out=manifest_out,
        rejects_out=rejects_out,
        metrics_out=metrics_out,
        plots_dir=plots_dir,
        allow_outside_repo=allow_outside_repo,
        jobs=jobs,
    )


@app.command(cls=MetavarCommand)
def aggregate(
    inputs: InputsArg,
    output: OutputOpt,
    params: ParamsOpt = None,
    manifest_out: ManifestOpt = None,
    rejects_out: RejectsOpt = None,
    metrics_out: MetricsOpt = None,
    plots_dir: PlotsOpt = None,
    allow_outside_repo: OutsideOpt = False,
    jobs: JobsOpt = None,
) -> None:
    """Aggregate MOS corpora: one 0-100 scale, cross-corpus dedup, rejects with reasons."""
    _run_stage(
        "aggregate",
        inputs,
        output,
        params,
        manifest_out=manifest_out,
        rejects_out=rejects_out,
        metrics_out=metrics_out,
        plots_dir=plots_dir,
        allow_outside_repo=allow_outside_repo,
        jobs=jobs,
    )


@app.command(cls=MetavarCommand)
def scales(params: ParamsOpt = None) -> None:
    """Print the scale table from params.yaml: corpus, native range, direction, formula, citation."""
    from corpusprov.params.load import load_params
    from corpusprov.params.scales import aggregate_params
    from corpusprov.render import render_scales

    with _boundary():
        path = params or Path("params.yaml")
        loaded = load_params(path, display_path(path), required=True)
        typer.echo(render_scales(aggregate_params(loaded)))


@app.command(cls=MetavarCommand)
def sample(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder to fill (encode/ and mos/).")] = Path(
        "data/raw"
    ),
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Random seed: same seed, same bytes.")] = 0,
    rows: Annotated[
        int, typer.Option("--rows", metavar="N", help="Encode-grid rows in all (MOS rows: about 2/3).")
    ] = 600,
) -> None:
    """Write deterministic synthetic shards shaped like real ones."""
    from corpusprov.sample import generate_samples

    with _boundary():
        from corpusprov.io.inputs import check_folder_target

        check_folder_target(out, "--out")
        result = generate_samples(out, seed=seed, rows=rows)
        for item in result.files:
            typer.echo(f"{item.kind:7} {item.rows:8d} rows  {display_path(item.path)}")


@app.command("use-shards", cls=MetavarCommand)
def use_shards(
    encode: Annotated[
        str | None,
        typer.Option(
            "--encode", metavar="DIR", help="Folder of encode-grid shards for merge [default: keep data/raw/encode]."
        ),
    ] = None,
    mos: Annotated[
        str | None,
        typer.Option("--mos", metavar="DIR", help="Folder of MOS shards for aggregate [default: keep data/raw/mos]."),
    ] = None,
) -> None:
    """Use your own shards: drop the sample stage from dvc.yaml and point merge/aggregate at your folders."""
    from corpusprov.shards import use_shards as run_use_shards

    with _boundary():
        plan = run_use_shards(repo_root(Path.cwd(), "use-shards"), {"merge": encode, "aggregate": mos})
        typer.echo(
            "use-shards: "
            + ("removed the sample stage; " if plan.removed_sample else "")
            + "; ".join(f"{stage} reads {folder}" for stage, folder in plan.inputs.items())
            + (f" (rewrote {', '.join(plan.changed)})" if plan.changed else " (nothing to change)")
        )
        folders = " ".join(dict.fromkeys(plan.inputs.values()))
        typer.echo(f"next: put your shards there, then: dvc add {folders} && dvc repro")


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
) -> None:
    """Prove dvc.lock, the manifests and the bytes on disk agree (anywhere in the repository)."""
    import json

    from corpusprov.prove.verify import verify as run_verify
    from corpusprov.render import render_findings

    with _boundary():
        report = run_verify(_repo_dir(), tuple(stages or ()), rehash=not no_rehash)
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

    with _boundary():
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

    with _boundary():
        # Manifests record repo-relative paths: replay from the root, whatever the working directory.
        root = _repo_dir()
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

    with _boundary():
        result = run_trace(_repo_dir(), stage, key)
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

    with _boundary():
        root = _repo_dir()
        a, b = (root_relative(spec, Path.cwd(), root) for spec in (a, b))
        results = diff_builds(root, a, b, tuple(stage or ()))
        if as_json:
            typer.echo(json.dumps([item.to_dict() for item in results], indent=2, ensure_ascii=False))
        else:
            typer.echo(render_diff(results))
        if exit_code and not all(item.same for item in results):
            raise typer.Exit(1)


@manifest_app.command("show", cls=MetavarCommand)
def manifest_show(path: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Manifest JSON.")]) -> None:
    """Print a manifest for a person: what went in, what came out, how."""
    from corpusprov.record.manifest import load_manifest
    from corpusprov.render import render_manifest

    with _boundary():
        manifest, _ = load_manifest(path, display_path(path))
        typer.echo(render_manifest(manifest))


@manifest_app.command("validate", cls=MetavarCommand)
def manifest_validate(
    paths: Annotated[list[Path], typer.Argument(metavar="MANIFEST...", help="Manifest JSON files.")],
) -> None:
    """Check manifests against the shipped JSON Schema and check that counters add up."""
    from corpusprov.prove.verify import kind_accounting
    from corpusprov.record.manifest import accounting_problems, load_manifest

    with _boundary():
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


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated


def main() -> None:
    """Console-script entry point."""
    import signal

    # A file-size limit should fail a write with EFBIG (a clear error, temp files removed)
    # rather than kill the process; SIGTERM should unwind like Ctrl-C.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A signal can land before a command's own boundary is entered (while typer parses the
    # arguments or a command imports its modules): it ends the run the same way.
    try:
        # A process-wide setting, so it belongs to the program, not to the library it calls.
        from corpusprov.stages.workers import quiet_gc

        quiet_gc()
        app()
    except Terminated:
        sys.stderr.write("corpusprov: terminated; no output was written\n")
        sys.exit(EXIT_TERMINATED)
    except KeyboardInterrupt:
        sys.stderr.write("corpusprov: interrupted; no output was written\n")
        sys.exit(EXIT_INTERRUPTED)
