"""The files DVC hashes for a folder dependency: every file below it that `.dvcignore` does not exclude."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["dvc_folder_files"]


def dvc_folder_files(root: Path, folder: str) -> list[str] | None:
    """Relative paths (posix) of the files DVC puts in ``folder``'s ``.dir`` listing, or ``None`` if it is no folder.

    DVC's own filter decides (``dvc.ignore.DvcIgnoreFilter``, the one ``dvc repro`` hands to
    dvc_data when it hashes a folder dep), so nested ``.dvcignore`` files, negations and
    dotfiles such as ``.DS_Store`` are treated exactly as DVC treats them: recursively, and a
    dotfile is hashed unless a pattern excludes it.
    """
    from dvc.fs import LocalFileSystem
    from dvc.ignore import DvcIgnoreFilter

    target = Path(os.path.abspath(root / folder))
    if not target.is_dir():
        return None
    fs = LocalFileSystem()
    ignore = DvcIgnoreFilter(fs, os.path.abspath(root))
    return sorted(Path(path).relative_to(target).as_posix() for path in ignore.find(fs, str(target)))
