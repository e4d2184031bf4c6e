"""The floor: read the input bytes once and hash them with sha256 + md5, nothing else.

Every stage must at least do this (the manifest records both hashes of every input), so
its wall time is the floor a stage is measured against.

    python bench/floor.py INPUT...    (files, or folders of *.jsonl)

Prints ``{"bytes": N, "files": K}`` on stdout.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from shards import input_files

CHUNK_BYTES = 1024 * 1024


def hash_file(path: Path) -> int:
    """sha256 and md5 of one file in a single pass of 1 MiB reads; return its size."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5()  # noqa: S324 -- DVC's content id, as the stages compute it
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    sha256.hexdigest()
    md5.hexdigest()
    return size


def main(argv: list[str]) -> int:
    """Hash every input and report the byte count."""
    files = input_files(argv)
    total = sum(hash_file(path) for path in files)
    print(json.dumps({"bytes": total, "files": len(files)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
