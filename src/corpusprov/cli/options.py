"""The options and arguments several commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "InputsArg",
    "JobsOpt",
    "JsonOpt",
    "ManifestArg",
    "ManifestOpt",
    "MetricsOpt",
    "OutputOpt",
    "OutsideOpt",
    "ParamsOpt",
    "PlotsOpt",
    "RejectsOpt",
]

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
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
ManifestArg = Annotated[Path, typer.Argument(metavar="MANIFEST", help="Manifest JSON.")]
