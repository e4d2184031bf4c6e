"""INPUT arguments to shard files, the way corpusprov expands them (shared by floor and reference)."""

from __future__ import annotations

from pathlib import Path


def input_files(args: list[str]) -> list[Path]:
    """Each argument as a file, or a folder's ``*.jsonl`` files sorted by name (as ours does)."""
    files: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            files.extend(
                sorted(
                    child
                    for child in path.iterdir()
                    if child.name.endswith(".jsonl") and not child.name.startswith(".")
                )
            )
        else:
            files.append(path)
    return files
