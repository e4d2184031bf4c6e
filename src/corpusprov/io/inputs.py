"""Resolve INPUT arguments (files or folders of ``*.jsonl``) into an ordered list of shards."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corpusprov.errors import InputError, UsageError

__all__ = [
    "FolderArg",
    "InputFile",
    "check_folder_target",
    "check_inside_repository",
    "check_output_path",
    "check_outputs",
    "display_path",
    "dvc_dir_md5",
    "resolve_inputs",
    "resolves_inside",
]


@dataclass(frozen=True)
class InputFile:
    """One shard to read."""

    path: Path
    """Where to open it."""
    display: str
    """Repo-relative POSIX path, as the manifest and dvc.lock name it."""
    arg: str
    """The command-line argument it came from (a file, or the folder that holds it)."""
    relpath: str | None
    """Path inside the folder argument, as DVC's ``.dir`` listing names it; ``None`` for files."""


@dataclass(frozen=True)
class FolderArg:
    """A folder given as an input."""

    display: str
    """Repo-relative POSIX path of the folder."""
    files: tuple[str, ...]
    """Relative paths of the ``*.jsonl`` files taken from it, sorted."""


def display_path(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (the working directory), POSIX style; never absolute."""
    base = base or Path.cwd()
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path(os.path.abspath(base))).as_posix()
    except ValueError:
        return Path(os.path.relpath(absolute, os.path.abspath(base))).as_posix()


def _kind_problem(path: Path, display: str) -> InputError | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return InputError(
                "input is a dangling symbolic link",
                path=display,
                fix="point the link at an existing shard or remove it",
            )
        return InputError(
            "input does not exist", path=display, fix="check the path, or run `dvc pull` / `dvc checkout`"
        )
    except OSError as exc:
        return InputError(f"cannot stat input: {exc.strerror or exc}", path=display)
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    return InputError(
        "input is not a regular file (a FIFO, socket or device?)",
        path=display,
        fix="pass regular JSONL files or folders of them",
    )


def resolve_inputs(args: Sequence[str | Path], base: Path | None = None) -> tuple[list[InputFile], list[FolderArg]]:
    """Expand each argument; a folder means its ``*.jsonl`` files, sorted by name."""
    if not args:
        raise UsageError("no inputs given", fix="pass at least one JSONL file or folder")
    files: list[InputFile] = []
    folders: list[FolderArg] = []
    seen: dict[str, str] = {}
    for arg in args:
        path = Path(arg)
        display = display_path(path, base)
        problem = _kind_problem(path, display)
        if problem is not None:
            raise problem
        added: list[InputFile] = []
        if path.is_dir():
            members = sorted(
                child.name
                for child in path.iterdir()
                if child.name.endswith(".jsonl") and not child.name.startswith(".")
            )
            if not members:
                raise InputError(
                    "folder holds no *.jsonl files", path=display, fix="add shards to it or pass files directly"
                )
            for name in members:
                child = path / name
                child_display = f"{display}/{name}" if display != "." else name
                problem = _kind_problem(child, child_display)
                if problem is not None:
                    raise problem
                if child.is_dir():
                    raise InputError(
                        "a folder named *.jsonl inside an input folder", path=child_display, fix="rename or move it"
                    )
                added.append(InputFile(child, child_display, display, name))
            folders.append(FolderArg(display, tuple(members)))
        else:
            added.append(InputFile(path, display, display, None))
        for item in added:
            if item.display in seen:
                first = seen[item.display]
                how = f"as {first} and as {arg}" if first != str(arg) else f"{arg} twice"
                raise UsageError(f"input given twice ({how})", path=item.display, fix="list each shard once")
            seen[item.display] = str(arg)
        files.extend(added)
    return files, folders


def _blocking_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (a file in the way)."""
    for parent in Path(os.path.abspath(path)).parents:
        if parent.exists():
            return None if parent.is_dir() else parent
        if parent.is_symlink():  # dangling: nothing can be created through it
            return parent
    return None


def check_folder_target(folder: Path, what: str, base: Path | None = None) -> None:
    """Refuse a folder to fill (``--out``, ``--keep``) that is a file or sits under one."""
    display = display_path(folder, base)
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"{what} is not a folder", path=display, fix=f"give {what} the path of a folder (new or existing)"
        )
    blocker = _blocking_ancestor(folder)
    if blocker is not None:
        raise UsageError(
            f"{what} cannot be created: {display_path(blocker, base)} is not a folder",
            path=display_path(blocker, base),
            fix=f"give {what} a path under a folder",
        )


def check_output_path(output: Path, base: Path | None = None) -> None:
    """An output must name a file whose folder exists or can be created."""
    _check_target_shape(output, display_path(output, base), base)


def _check_target_shape(output: Path, display: str, base: Path | None) -> None:
    # (A trailing "/" is already gone: pathlib drops it when typer builds the Path.)
    if output.name in ("", ".", ".."):
        raise UsageError(
            "output path names a folder, not a file", path=display or ".", fix="give a file path, e.g. out/corpus.jsonl"
        )
    blocker = _blocking_ancestor(output)
    if blocker is not None:
        shown = display_path(blocker, base)
        raise UsageError(
            f"cannot create {display}: {shown} is a file, not a folder",
            path=shown,
            fix="choose another output folder, or move that file away",
        )


def _real(path: Path, base: Path | None = None) -> Path:
    """``path`` (relative to ``base``) with every symbolic link resolved."""
    return Path(os.path.realpath((base or Path.cwd()) / path))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def resolves_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` still lies inside ``root`` once every symbolic link is resolved."""
    return _within(Path(os.path.realpath(path)), Path(os.path.realpath(root)))


def check_inside_repository(named: Sequence[tuple[Path, str, str]], base: Path | None = None) -> None:
    """Refuse ``(path, display, what)`` entries outside the repository, as written or once links resolve.

    A link is followed to where it really leads: a shard folder holding a link to
    ``/etc/passwd``, or an output folder that is a link to elsewhere, must not be read or
    written without ``--allow-outside-repo``. The message names the path as given, never
    the link's (absolute) target.
    """
    root = _real(Path(), base)
    for path, display, what in named:
        if display == ".." or display.startswith("../"):
            raise UsageError(
                f"{what} path is outside the repository (the working directory)",
                path=display,
                fix="move it into the repository (`dvc add` / `dvc import`), "
                "or pass --allow-outside-repo to record a relative path that leaves it",
            )
        if not _within(_real(path, base), root):
            raise UsageError(
                f"{what} path is a symbolic link (or inside a linked folder) that leads outside the repository",
                path=display,
                fix="copy the file into the repository (`dvc add` / `dvc import`), or pass "
                "--allow-outside-repo if reading or writing there is intended",
            )


def check_outputs(
    outputs: Sequence[Path], files: Sequence[InputFile], folders: Sequence[FolderArg], base: Path | None = None
) -> None:
    """Refuse outputs that are inputs, sit inside an input folder, or collide with each other."""
    input_displays = {item.display for item in files}
    folder_displays = [folder.display for folder in folders]
    seen: set[str] = set()
    for output in outputs:
        display = display_path(output, base)
        _check_target_shape(output, display, base)
        if output.exists() and not output.is_file() and not output.is_dir():
            raise UsageError(
                "output path is not a regular file (a device node, FIFO or socket, or a link to one)",
                path=display,
                fix="write to a regular file: outputs are replaced by renaming, which would replace the node itself",
            )
        real = _real(output, base)
        if any(real == _real(item.path, base) for item in files):
            raise UsageError(
                "output path is also an input (through a symbolic link)",
                path=display,
                fix="write the output somewhere else",
            )
        for folder_arg in folders:
            if _within(real, _real(Path(folder_arg.display), base)):
                raise UsageError(
                    f"output path is inside the input folder {folder_arg.display} (once symbolic links are resolved)",
                    path=display,
                    fix="write outputs outside the shard folders, or the next run would read them back as inputs",
                )
        if display in seen:
            raise UsageError(
                "two outputs share one path",
                path=display,
                fix="give --output, --rejects-out, --metrics-out and --manifest-out distinct paths",
            )
        seen.add(display)
        if display in input_displays or any(
            output.exists() and item.path.exists() and output.samefile(item.path) for item in files
        ):
            raise UsageError("output path is also an input", path=display, fix="write the output somewhere else")
        for folder in folder_displays:
            if folder == "." or display.startswith(folder.rstrip("/") + "/"):
                raise UsageError(
                    f"output path is inside the input folder {folder}",
                    path=display,
                    fix="write outputs outside the shard folders, or the next run would read them back as inputs",
                )
        if output.is_dir():
            raise UsageError("output path is a folder", path=display, fix="give a file path")


def dvc_dir_md5(entries: Sequence[tuple[str, str]]) -> str:
    """DVC 3's ``.dir`` hash of a folder from ``(relpath, md5)`` pairs.

    DVC hashes the JSON of its sorted ``{"md5", "relpath"}`` listing (``json.dumps`` with
    default separators and ``sort_keys``) and appends ``.dir``.
    """
    import hashlib

    listing = sorted(({"md5": md5, "relpath": relpath} for relpath, md5 in entries), key=lambda item: item["relpath"])
    blob = json.dumps(listing, sort_keys=True).encode("utf-8")
    return hashlib.md5(blob).hexdigest() + ".dir"  # noqa: S324 -- DVC's content id
