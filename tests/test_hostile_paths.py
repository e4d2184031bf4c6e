"""Paths are checked after resolving symbolic links (issue 13, point 3).

An input link to a file outside the repository, an output whose folder is a link leading
outside it or into an input folder, and an output onto a device node (or a link to one)
are each refused with one line and exit 2, and nothing is written or replaced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import Cli, encode_row, write_jsonl
from tests.hostile import assert_clean_failure
from tests.test_merge_bad_input import snapshot


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    write_jsonl(root / "in" / "a.jsonl", [encode_row(crf=20)])
    write_jsonl(tmp_path / "outside" / "secret.jsonl", [encode_row(crf=99)])
    (root / "params.yaml").write_text("merge:\n  on_invalid_row: reject\n", encoding="utf-8")
    return root


def _cli(root: Path) -> Cli:
    from typer.testing import CliRunner

    return Cli(CliRunner(), root)


def _tree(root: Path) -> object:
    return snapshot(root.parent)


@pytest.mark.parametrize("target", ["/etc/passwd", "{outside}/secret.jsonl"])
@pytest.mark.parametrize("form", ["in-folder", "file-arg"])
def test_input_link_leaving_the_repository_is_refused(work: Path, target: str, form: str) -> None:
    link = work / "in" / "link.jsonl"
    link.symlink_to(target.replace("{outside}", str(work.parent / "outside")))
    before = _tree(work)

    result = _cli(work)("merge", "in" if form == "in-folder" else "in/link.jsonl", "--output", "out/m.jsonl")

    line = assert_clean_failure(result, 2)
    assert line.startswith("corpusprov: error: in/link.jsonl: "), line
    assert "outside the repository" in line and "; " in line, line
    assert "/etc" not in line and str(work.parent) not in line, line
    assert _tree(work) == before


def test_input_link_inside_the_repository_is_read(work: Path) -> None:
    write_jsonl(work / "shards" / "b.jsonl", [encode_row(crf=21)])
    (work / "in" / "b.jsonl").symlink_to(work / "shards" / "b.jsonl")
    result = _cli(work)("merge", "in", "--output", "out/m.jsonl")
    assert result.exit_code == 0, result.output
    assert len((work / "out" / "m.jsonl").read_bytes().splitlines()) == 2


def test_output_through_a_linked_folder_leaving_the_repository_is_refused(work: Path) -> None:
    (work / "out").symlink_to(work.parent / "outside", target_is_directory=True)
    before = _tree(work)
    for option in ("--output", "--manifest-out", "--rejects-out", "--metrics-out"):
        args = ["--output", "out/m.jsonl"] if option == "--output" else ["--output", "o/m.jsonl", option, "out/x"]
        result = _cli(work)("merge", "in", *args)
        line = assert_clean_failure(result, 2)
        assert "outside the repository" in line and str(work.parent) not in line, line
    assert _tree(work) == before


def test_output_through_a_link_into_an_input_folder_is_refused(work: Path) -> None:
    (work / "sneaky").symlink_to(work / "in", target_is_directory=True)
    before = _tree(work)
    result = _cli(work)("merge", "in", "--output", "sneaky/m.jsonl")
    line = assert_clean_failure(result, 2)
    assert line.startswith("corpusprov: error: sneaky/m.jsonl: "), line
    assert "input folder" in line, line
    assert _tree(work) == before


def test_output_link_onto_an_input_file_is_refused(work: Path) -> None:
    (work / "m.jsonl").symlink_to(work / "in" / "a.jsonl")
    before = _tree(work)
    result = _cli(work)("merge", "in/a.jsonl", "--output", "m.jsonl")
    assert_clean_failure(result, 2)
    assert _tree(work) == before


def _special_files(root: Path) -> list[tuple[str, Path]]:
    """A FIFO, and a character device when this process may create one."""
    made = []
    fifo = root / "pipe.jsonl"
    os.mkfifo(fifo)
    made.append(("fifo", fifo))
    device = root / "null.jsonl"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pass
    else:
        made.append(("device", device))
    return made


@pytest.mark.parametrize("allow", [False, True], ids=["default", "allow-outside-repo"])
def test_output_onto_a_device_node_or_fifo_is_refused(work: Path, allow: bool) -> None:
    extra = ["--allow-outside-repo"] if allow else []
    targets = [str(path.relative_to(work)) for _, path in _special_files(work)]
    (work / "to-null.jsonl").symlink_to("/dev/null")
    targets.append("to-null.jsonl")
    if allow:
        targets.append("/dev/null")
    before = _tree(work)
    for target in targets:
        for option in ("--output", "--rejects-out"):
            args = ["--output", target] if option == "--output" else ["--output", "out/m.jsonl", option, target]
            result = _cli(work)("merge", "in", *args, *extra)
            line = assert_clean_failure(result, 2)
            assert "not a regular file" in line or "outside the repository" in line, line
    assert _tree(work) == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
