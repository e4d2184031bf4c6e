"""Staged outputs: every file of a run is written to a temp file and renamed together at the end."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from corpusprov.errors import OutputError
from corpusprov.io.fsutil import (
    TEMP_PREFIX,
    BackgroundWriter,
    atomic_writer,
    clean_stale_temps,
    fsync_folder,
    process_alive,
)
from corpusprov.io.hashing import Digest, ThreadedHasher

__all__ = [
    "FLUSH_BYTES",
    "INTENT_PREFIX",
    "OutputRecord",
    "OutputSet",
    "StagedFile",
    "interrupted_commits",
    "recover_commits",
]

#: A staged file hands its buffer on (to be hashed and written) once it holds this much.
FLUSH_BYTES = 1024 * 1024

#: A commit's intent record: written into every output folder before the first rename, so a
#: run killed between renames (SIGKILL cannot be held) leaves a record of the whole set.
INTENT_PREFIX = ".corpusprov-commit-"


@dataclass(frozen=True)
class OutputRecord:
    """A written output as the manifest records it."""

    role: str
    """``corpus``, ``rejects`` or ``metrics``."""
    path: str
    """Repo-relative path."""
    digest: Digest
    """Size and hashes of the bytes written."""
    rows: int | None
    """Lines written (``None`` for non-JSONL files)."""


def _write_error(display: str, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write output: {exc.strerror or exc}",
        path=display,
        fix="check free space and file size limits (ulimit -f); nothing was written",
    )


class StagedFile:
    """A temp file next to its target that hashes what is written to it.

    Buffers of at least ``FLUSH_BYTES`` are hashed and written in two background threads
    (:class:`~corpusprov.io.hashing.ThreadedHasher`, :class:`~corpusprov.io.fsutil.BackgroundWriter`).
    """

    def __init__(self, target: Path, display: str, role: str) -> None:
        self.target = target
        self.display = display
        self.role = role
        self.rows = 0
        self.temp = target.with_name(f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-{target.name}")
        self._hasher = ThreadedHasher()
        self._buffer = bytearray()
        self._handle: BinaryIO | None = None
        self._writer: BackgroundWriter | None = None
        self._final: Digest | None = None
        self.created_folders: list[Path] = []

    def open(self) -> None:
        """Create the temp file (and the folders it needs, remembered for :meth:`abort`)."""
        missing = []
        folder = self.target.parent
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        self.created_folders = missing  # deepest first
        self.target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.target)
        self._handle = open(self.temp, "xb")  # noqa: SIM115 -- closed by finish/abort

    def write_line(self, line: bytes) -> None:
        """Append one line (which carries its own newline)."""
        self.write_lines(line, 1)

    def write_lines(self, lines: bytes | memoryview, rows: int) -> None:
        """Append ``rows`` whole lines at once (each carries its own newline)."""
        buffer = self._buffer
        buffer += lines
        self.rows += rows
        if len(buffer) >= FLUSH_BYTES:
            self._flush()

    def write_bytes(self, data: bytes) -> None:
        """Append raw bytes (for non-JSONL outputs)."""
        self._buffer += data
        self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        # The buffer itself goes to the hasher (no copy): this file never touches it again.
        block = self._buffer
        self._buffer = bytearray()
        self._hasher.update_owned(block)
        try:
            self._require_writer().put(block)
        except OSError as exc:
            raise _write_error(self.display, exc) from exc

    def _require_handle(self) -> BinaryIO:
        if self._handle is None:
            raise RuntimeError(f"staged output {self.display} written before open()")
        return self._handle

    def _require_writer(self) -> BackgroundWriter:
        if self._writer is None:
            self._writer = BackgroundWriter(self._require_handle())
        return self._writer

    def finish(self) -> Digest:
        """Flush, fsync and close; return the digest of everything written."""
        if self._final is None:
            self._flush()
            handle = self._require_handle()
            try:
                if self._writer is not None:
                    self._writer.close()
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
            except OSError as exc:
                raise _write_error(self.display, exc) from exc
            self._final = self._hasher.digest()
        return self._final

    def abort(self) -> None:
        """Close and delete the temp file, best effort.

        Cleanup runs while another error unwinds (a read-only or full filesystem): its own
        failure must not replace the error that explains what happened.
        """
        self._hasher.close()
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
        if self._handle is not None and not self._handle.closed:
            with contextlib.suppress(OSError):
                self._handle.close()
        with contextlib.suppress(OSError):
            self.temp.unlink()


def _intent_files(folder: Path) -> list[Path]:
    try:
        return sorted(path for path in folder.glob(f"{INTENT_PREFIX}*.json") if path.is_file())
    except OSError:
        return []


def _read_intent(path: Path) -> list[tuple[Path, Path]] | None:
    """The ``(temp, target)`` renames an intent record lists (paths relative to its folder)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [(path.parent / item["temp"], path.parent / item["target"]) for item in document["renames"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _intent_owner(path: Path) -> int | None:
    pid_text = path.name[len(INTENT_PREFIX) :].partition("-")[0]
    return int(pid_text) if pid_text.isdigit() else None


def interrupted_commits(folder: Path) -> list[Path]:
    """Intent records in ``folder`` left by a run that died mid-commit (its process is gone)."""
    found = []
    for path in _intent_files(folder):
        owner = _intent_owner(path)
        if owner is None or not process_alive(owner):
            found.append(path)
    return found


def recover_commits(folder: Path) -> list[Path]:
    """Roll forward every interrupted commit recorded in ``folder``; return the targets put in place.

    Every staged file was complete and fsynced before its intent record was written, so the
    renames not yet done can be done now: the set on disk is then the dead run's whole set.
    A record whose listed files are gone (another folder's copy was already used) is dropped.
    """
    done: list[Path] = []
    # A run killed while writing its intent record leaves only the record's temp file.
    for partial in folder.glob(f"{TEMP_PREFIX}*-{INTENT_PREFIX}*.json"):
        owner = partial.name[len(TEMP_PREFIX) :].partition("-")[0]
        if owner.isdigit() and not process_alive(int(owner)):
            with contextlib.suppress(OSError):
                partial.unlink()
    for intent in interrupted_commits(folder):
        renames = _read_intent(intent)
        for temp, target in renames or []:
            if temp.exists():
                os.replace(temp, target)
                done.append(target)
        for copy in {target.parent for _, target in renames or []} | {folder}:
            for other in _intent_files(copy):
                if other.name == intent.name:
                    with contextlib.suppress(OSError):
                        other.unlink()
            fsync_folder(copy)
    return done

    return True


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class OutputSet:
    """All outputs of one run; nothing appears at a target path until :meth:`commit`."""

    def __init__(self) -> None:
        self._files: list[StagedFile] = []

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()

    def stage(self, target: Path, display: str, role: str) -> StagedFile:
        """Open a staged file for ``target`` (first finishing a commit a killed run left half done)."""
        if target.parent.is_dir():
            # Before open() cleans stale temps: they are the files the interrupted commit lists.
            try:
                with _folder_lock(target.parent):
                    recover_commits(target.parent)
            except OSError as exc:
                raise OutputError(
                    f"cannot finish an interrupted earlier commit: {exc.strerror or exc}",
                    path=display,
                    fix="check the folder's permissions",
                ) from exc
        staged = StagedFile(target, display, role)
        # Registered before the temp exists, so an interrupt during open() still cleans it up.
        self._files.append(staged)
        try:
            staged.open()
        except OSError as exc:
            raise OutputError(
                f"cannot create output: {exc.strerror or exc}", path=display, fix="check that the folder is writable"
            ) from exc
        return staged

    def records(self) -> list[OutputRecord]:
        """Finish every staged file and describe it."""
        return [
            OutputRecord(
                staged.role,
                staged.display,
                staged.finish(),
                staged.rows if staged.role in ("corpus", "rejects") else None,
            )
            for staged in self._files
        ]

    def commit(self) -> None:
        """Rename every temp file onto its target, in staging order (the manifest last).

        Two runs writing the same outputs each rename a complete set while holding an
        exclusive lock on the output folders, so the files on disk always come from one run:
        never a corpus from one and a manifest from the other.
        """
        folders = sorted({staged.target.parent.resolve() for staged in self._files})
        for staged in self._files:
            staged.finish()
        current = self._files[0]
        try:
            # Ctrl-C or SIGTERM between two renames would leave a corpus beside an older
            # manifest: hold them until the set is in place (SIGKILL cannot be held).
            # SIGKILL between two renames cannot be held: the intent record, in every output
            # folder, lets the next run that stages into any of them finish the set.
            with _signals_held(), contextlib.ExitStack() as locks:
                for folder in folders:
                    locks.enter_context(_folder_lock(folder))
                intents = self._write_intents(folders) if len(self._files) > 1 else []
                for staged in self._files:
                    current = staged
                    os.replace(staged.temp, staged.target)
                for folder in folders:
                    fsync_folder(folder)
                for intent in intents:
                    with contextlib.suppress(OSError):
                        intent.unlink()
                for folder in {intent.parent for intent in intents}:
                    fsync_folder(folder)
        except OSError as exc:
            self.abort()
            raise OutputError(
                f"cannot put the output in place: {exc.strerror or exc}",
                path=current.display,
                fix="check the folder's permissions and free space",
            ) from exc

    def _write_intents(self, folders: list[Path]) -> list[Path]:
        """Write the intent record into each folder (fsynced) before the first rename."""
        name = f"{INTENT_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.json"
        written = []
        for folder in folders:
            renames = [
                {
                    "temp": os.path.relpath(staged.temp.resolve(), folder),
                    "target": os.path.relpath(staged.target.parent.resolve() / staged.target.name, folder),
                }
                for staged in self._files
            ]
            intent = folder / name
            with atomic_writer(intent) as handle:
                handle.write(json.dumps({"version": 1, "renames": renames}, indent=1).encode())
            written.append(intent)
        return written

    def abort(self) -> None:
        """Remove every temp file, and the folders this run created if they are empty."""
        for staged in self._files:
            staged.abort()
        for staged in self._files:
            for folder in staged.created_folders:
                with contextlib.suppress(OSError):
                    folder.rmdir()
