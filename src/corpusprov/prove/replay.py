"""replay: re-run a manifest's recorded command and params on its recorded inputs, compare hashes."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from corpusprov import __version__
from corpusprov.errors import DataError, ParamsError, UsageError
from corpusprov.io.hashing import hash_file
from corpusprov.io.inputs import check_folder_target, display_path, resolve_inputs, resolves_inside
from corpusprov.record.manifest import Manifest, load_manifest
from corpusprov.stages.run import StageRequest, run_aggregate, run_merge

__all__ = ["ReplayResult", "replay"]


@dataclass(frozen=True)
class ReplayResult:
    """Whether the recorded output was reproduced, and if not, where it first differs."""

    kind: str
    """``merge`` or ``aggregate``."""
    reproduced: bool
    """True when the corpus output's sha256 is the recorded one."""
    expected_sha256: str
    """The recorded corpus sha256."""
    found_sha256: str
    """The replayed corpus sha256."""
    rejects_reproduced: bool | None
    """The same for the rejects file (``None`` when none was recorded)."""
    first_difference: tuple[int, str, str] | None
    """``(line, recorded line, replayed line)`` of the first differing row, when known."""
    kept: str | None
    """Where the replayed outputs were kept (``--keep``), else ``None``."""
    recorded_version: str
    """corpusprov version that wrote the manifest."""
    version: str
    """corpusprov version that replayed it."""
    note: str | None = None
    """Why rows could not be compared, when they could not."""
    differing_fields: tuple[str, ...] = ()
    """``field: recorded X, replayed Y`` for that row, when both lines are JSON objects."""


def _check_inputs(manifest: Manifest, display: str) -> None:
    for record in manifest.inputs:
        path = Path(record.path)
        if not resolves_inside(path, Path.cwd()):
            raise UsageError(
                f"recorded input {record.path} leads outside the repository (a symbolic "
                "link?): replay does not read it",
                path=display,
                fix="restore the shard inside the repository (`dvc checkout`), then replay",
            )
        if not path.is_file():
            raise DataError(
                f"recorded input {record.path} is missing",
                path=display,
                fix="restore it (`dvc pull` / `dvc checkout`) and replay from the repository root",
            )
        digest = hash_file(path)
        if digest.sha256 != record.sha256 or digest.bytes != record.bytes:
            raise DataError(
                f"refusing to replay: input {record.path} changed since the manifest was "
                f"written (sha256 {record.sha256[:12]}... recorded, {digest.sha256[:12]}... now)",
                path=display,
                fix="restore the recorded bytes (`git checkout` the commit and `dvc checkout`), then replay",
            )
    files, _ = resolve_inputs(manifest.command["args"]["inputs"])
    if [item.display for item in files] != [record.path for record in manifest.inputs]:
        raise DataError(
            "refusing to replay: the recorded input arguments now expand to different files",
            path=display,
            fix="restore the input folders to the recorded shard list",
        )


def _first_difference(recorded: Path, replayed: Path) -> tuple[int, bytes, bytes] | None:
    with open(recorded, "rb") as left, open(replayed, "rb") as right:
        line_no = 0
        while True:
            line_no += 1
            a = left.readline()
            b = right.readline()
            if a != b:
                return (line_no, a, b)
            if not a:
                return None


def _field_differences(recorded: bytes, replayed: bytes) -> tuple[str, ...]:
    """Which fields of two JSONL rows differ, as ``name: recorded X, replayed Y``."""
    from corpusprov.io.rowparse import parse_row

    try:
        left, _ = parse_row(recorded.rstrip(b"\n"))
        right, _ = parse_row(replayed.rstrip(b"\n"))
    except Exception:  # any unparsable line just means no field-level detail
        return ()
    names = sorted(set(left) | set(right))
    missing = "(absent)"
    return tuple(
        f"{name}: recorded {left.get(name, missing)!r}, replayed {right.get(name, missing)!r}"
        for name in names
        if left.get(name, missing) != right.get(name, missing)
    )[:10]


def _show(line: bytes) -> str:
    text = line.decode("utf-8", "replace").rstrip("\n")
    if not line:
        return "(end of file)"
    return text if len(text) <= 300 else text[:297] + "..."


def replay(manifest_path: Path, keep: Path | None = None) -> ReplayResult:
    """Replay ``manifest_path`` from the repository root; raise if its inputs changed."""
    display = display_path(manifest_path)
    manifest, _ = load_manifest(manifest_path, display)
    _check_inputs(manifest, display)
    corpus = manifest.output("corpus")
    if corpus is None:
        raise DataError("manifest records no corpus output", path=display)
    if keep is not None:
        check_folder_target(keep, "--keep")
        if keep.exists() and any(keep.iterdir()):
            raise UsageError("--keep folder is not empty", path=display_path(keep), fix="give an empty or new folder")
        keep.mkdir(parents=True, exist_ok=True)
        workdir = keep
    else:
        workdir = Path(tempfile.mkdtemp(prefix="corpusprov-replay-"))
    try:
        params_path = None
        if manifest.params["path"] is not None:
            params_path = workdir / "params.yaml"
            with open(params_path, "w", encoding="utf-8") as handle:
                YAML(typ="safe", pure=True).dump({manifest.params["group"]: manifest.params["values"]}, handle)
        output = workdir / Path(corpus.path).name
        rejects = manifest.output("rejects")
        request = StageRequest(
            inputs=tuple(manifest.command["args"]["inputs"]),
            output=output,
            params_path=params_path or workdir / "no-params.yaml",
            params_explicit=params_path is not None,
            rejects_out=workdir / Path(rejects.path).name if rejects else None,
            argv=("corpusprov", "replay", display),
            allow_outside_repo=True,  # the replay writes to a temporary folder, by design
        )
        try:
            report = (run_merge if manifest.kind == "merge" else run_aggregate)(request)
        except ParamsError as exc:
            # The params file named in the error is this replay's temporary copy of the
            # manifest's params.values, deleted on return: name the manifest instead.
            raise DataError(
                f"the recorded params (params.values) are not valid: {exc.message}",
                path=display,
                fix="restore the manifest (`dvc checkout`) or re-run the stage that wrote it",
            ) from None
        replayed = report.manifest.output("corpus")
        replayed_rejects = report.manifest.output("rejects")
        assert replayed is not None  # noqa: S101 -- a stage always writes its corpus
        reproduced = replayed.sha256 == corpus.sha256
        difference = None
        fields: tuple[str, ...] = ()
        note = None
        if not reproduced:
            recorded_path = Path(corpus.path)
            if recorded_path.is_file() and hash_file(recorded_path).sha256 == corpus.sha256:
                raw = _first_difference(recorded_path, output)
                if raw is not None:
                    difference = (raw[0], _show(raw[1]), _show(raw[2]))
                    fields = _field_differences(raw[1], raw[2]) if raw[1] and raw[2] else ()
            else:
                note = f"the recorded output {corpus.path} is not on disk with its recorded bytes"
        return ReplayResult(
            kind=manifest.kind,
            reproduced=reproduced,
            expected_sha256=corpus.sha256,
            found_sha256=replayed.sha256,
            rejects_reproduced=(replayed_rejects.sha256 == rejects.sha256 if rejects and replayed_rejects else None),
            first_difference=difference,
            differing_fields=fields,
            kept=display_path(keep) if keep is not None else None,
            recorded_version=manifest.tool["version"],
            version=__version__,
            note=note,
        )
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
