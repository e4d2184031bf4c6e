"""The commands that build: merge, aggregate, and what a pipeline needs around them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from corpusprov.cli.base import app, argv, boundary
from corpusprov.cli.help import MetavarCommand
from corpusprov.cli.options import (
    InputsArg,
    JobsOpt,
    ManifestOpt,
    MetricsOpt,
    OutputOpt,
    OutsideOpt,
    ParamsOpt,
    PlotsOpt,
    RejectsOpt,
)
from corpusprov.io.inputs import display_path
from corpusprov.reporoot import repo_root

__all__ = ["aggregate", "merge", "sample", "scales", "use_shards"]


def _run_stage(kind: str, inputs: list[str], output: Path, params: Path | None, **options: Any) -> None:
    """Run ``merge`` or ``aggregate`` with progress on stderr and a summary on stdout."""
    from corpusprov.progress import stage_progress
    from corpusprov.render import render_stage_summary
    from corpusprov.stages.run import StageRequest, run_aggregate, run_merge

    runner = run_merge if kind == "merge" else run_aggregate
    on_progress, end_progress = stage_progress(kind)
    with boundary():
        from corpusprov.io.inputs import check_output_path

        # Before the stage derives the sidecar names from it (`.` has no name to extend).
        check_output_path(output)
        report = runner(
            StageRequest(
                inputs=tuple(inputs),
                output=output,
                params_path=params or Path("params.yaml"),
                params_explicit=params is not None,
                argv=argv(),
                progress=on_progress,
                **options,
            )
        )
        end_progress()
        typer.echo(render_stage_summary(kind, report))


def _stage_command(kind: str, summary: str) -> Any:
    """The command of one stage: both take the same arguments and differ only in the core they run."""

    def command(
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
        _run_stage(
            kind,
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

    command.__doc__ = summary
    command.__name__ = kind
    return app.command(kind, cls=MetavarCommand)(command)


merge = _stage_command("merge", "Merge encode-grid shards: validate required keys, dedup on the natural key.")
aggregate = _stage_command(
    "aggregate", "Aggregate MOS corpora: one 0-100 scale, cross-corpus dedup, rejects with reasons."
)


@app.command(cls=MetavarCommand)
def scales(params: ParamsOpt = None) -> None:
    """Print the scale table from params.yaml: corpus, native range, direction, formula, citation."""
    from corpusprov.params.load import load_params
    from corpusprov.params.scales import aggregate_params
    from corpusprov.render import render_scales

    with boundary():
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

    with boundary():
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

    with boundary():
        plan = run_use_shards(repo_root(Path.cwd(), "use-shards"), {"merge": encode, "aggregate": mos})
        typer.echo(
            "use-shards: "
            + ("removed the sample stage; " if plan.removed_sample else "")
            + "".join(f"removed the {name} stage (it wrote the folder merge read); " for name in plan.removed_feeders)
            + "; ".join(f"{stage} reads {folder}" for stage, folder in plan.inputs.items())
            + (f" (rewrote {', '.join(plan.changed)})" if plan.changed else " (nothing to change)")
        )
        folders = " ".join(dict.fromkeys(plan.inputs.values()))
        typer.echo(f"next: put your shards there, then: dvc add {folders} && dvc repro")
