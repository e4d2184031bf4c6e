"""Bad input to ``corpusprov merge``: one clear line, the right exit code, and nothing lost.

Every case drives the real CLI in-process from ``tmp_path`` (the ``cli`` fixture) and checks
the whole contract from SPEC.md "Bad input gets a clear error and loses nothing": the exit
code (1 bad data, 2 usage / missing files / params), exactly one ``corpusprov: error:``
line on stderr naming the file (and line) with a fix hint after ``; ``, no traceback, and a
``tmp_path`` tree that is byte-for-byte what it was before the run (so no corpus, manifest,
rejects or temp file appeared, and no input was touched).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corpusprov.params.defaults import ENCODE_GRID_REQUIRED_KEYS
from tests.conftest import encode_row, write_jsonl

OUTPUT = "out/corpus.jsonl"
MANIFEST = "out/corpus.jsonl.manifest.json"
REJECTS = "out/corpus.rejects.jsonl"
TEMP_PREFIX = ".corpusprov-tmp-"
ERROR_PREFIX = "corpusprov: error: "
BOM = b"\xef\xbb\xbf"

# Every byte-level quirk the reader can be told to tolerate, at once.
LENIENT_JSONL = "merge:\n  jsonl:\n    bom: accept\n    crlf: accept\n    blank_lines: skip\n"


# --------------------------------------------------------------------------- helpers


def rows(count: int, first_crf: int = 20) -> list[dict[str, Any]]:
    """``count`` valid rows with distinct natural keys."""
    return [encode_row(crf=first_crf + index) for index in range(count)]


def line_bytes(row: dict[str, Any]) -> bytes:
    """One row as a stdlib-json line without its newline (NaN allowed)."""
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def write_bytes(path: Path, data: bytes) -> Path:
    """Write raw bytes, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def canonical(row: dict[str, Any]) -> bytes:
    """What the contract says a kept row looks like on disk (sorted, compact, raw UTF-8)."""
    return (json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def good_shard(tmp_path: Path, name: str = "in/a.jsonl") -> Path:
    """A clean shard that is read (and staged into the output) before the bad one."""
    return write_jsonl(tmp_path / name, rows(2, first_crf=10))


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under ``root``: file bytes, link targets, FIFOs and folders (never opens FIFOs)."""
    tree: dict[str, Any] = {}
    for folder, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(folder) / name
            mode = path.lstat().st_mode
            key = path.relative_to(root).as_posix()
            if stat.S_ISLNK(mode):
                tree[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                tree[key] = ("file", path.read_bytes())
            elif stat.S_ISDIR(mode):
                tree[key] = ("dir",)
            else:
                tree[key] = ("special", stat.S_IFMT(mode))
    return tree


def temp_files(root: Path) -> list[str]:
    """Leftover staging files anywhere under ``root``."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob(f"{TEMP_PREFIX}*"))


@contextlib.contextmanager
def fifo_unblocker(fifos: Sequence[Path]) -> Iterator[None]:
    """If the product ever opens a FIFO for reading, give it EOF instead of hanging the suite."""
    done = threading.Event()

    def feed() -> None:
        while not done.wait(0.25):
            for fifo in fifos:
                try:
                    handle = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:  # ENXIO: nobody is reading, which is the expected case
                    continue
                os.close(handle)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def assert_one_error_line(result: Any, where: str, mentions: Sequence[str]) -> str:
    """stderr is exactly one ``corpusprov: error: WHERE...; FIX`` line; returns it."""
    stderr = result.stderr
    assert "Traceback" not in result.output, result.output
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith(ERROR_PREFIX), line
    text = line[len(ERROR_PREFIX) :]
    assert re.match(where, text), f"location {where!r} not at the start of: {text}"
    for fragment in mentions:
        assert fragment.lower() in text.lower(), f"{fragment!r} not in: {text}"
    _, separator, fix = text.partition("; ")
    assert separator, f"no fix hint (text after '; ') in: {text}"
    assert fix.strip(), f"empty fix hint in: {text}"
    assert result.stdout == "", f"stdout on a failed run: {result.stdout!r}"
    return str(line)


def read_manifest(tmp_path: Path, output: str = OUTPUT) -> dict[str, Any]:
    """The manifest sidecar of ``output`` as plain JSON."""
    loaded: dict[str, Any] = json.loads((tmp_path / (output + ".manifest.json")).read_bytes())
    return loaded


def read_rejects(tmp_path: Path, path: str = REJECTS) -> list[dict[str, Any]]:
    """The rejects file's records (NaN tokens allowed, as the product writes them)."""
    return [json.loads(line) for line in (tmp_path / path).read_bytes().splitlines()]


def assert_accounting(counters: dict[str, int]) -> None:
    """rows_in == rows_out + duplicates + every rejected_*."""
    rejected = sum(value for name, value in counters.items() if name.startswith("rejected_"))
    assert counters["rows_in"] == counters["rows_out"] + counters["duplicates"] + rejected, counters


# --------------------------------------------------------------------------- the failure matrix


@dataclass(frozen=True)
class Case:
    """One bad input: how to build it, how to run merge on it, what must come out."""

    build: Callable[[Path], object]
    """Creates inputs (and params.yaml if the case needs one) under tmp_path."""
    args: tuple[str, ...]
    """INPUT arguments and options after ``merge``; ``--output out/corpus.jsonl`` is added
    unless the case gives its own ``--output``."""
    exit_code: int
    """1 for bad data, 2 for usage, missing files and params problems."""
    where: str
    """Regex the message must start with: the file, and ``:LINE`` where a line applies."""
    mentions: tuple[str, ...] = ()
    """Fragments the message must contain (case-insensitive)."""
    fifos: tuple[str, ...] = ()
    """FIFOs the case creates (fed EOF if the product ever blocks on one)."""


def _params(text: str) -> Callable[[Path], None]:
    def build(tmp_path: Path) -> None:
        good_shard(tmp_path)
        (tmp_path / "params.yaml").write_text(text, encoding="utf-8")

    return build


def _bad_second_shard(data: bytes, params: str | None = None) -> Callable[[Path], None]:
    """A good ``in/a.jsonl`` (so rows are already staged) and the bad ``in/b.jsonl``."""

    def build(tmp_path: Path) -> None:
        good_shard(tmp_path)
        write_bytes(tmp_path / "in/b.jsonl", data)
        if params is not None:
            (tmp_path / "params.yaml").write_text(params, encoding="utf-8")

    return build


def _valid_then(*bad_lines: bytes, trailing_newline: bool = True) -> bytes:
    """One valid row, then ``bad_lines``; the bad one is line 2."""
    body = b"\n".join([line_bytes(encode_row(crf=30)), *bad_lines])
    return body + b"\n" if trailing_newline else body


def _duplicate_top_key() -> bytes:
    return line_bytes(encode_row(crf=31))[:-1] + b', "crf": 32}'


def _duplicate_nested_key() -> bytes:
    return line_bytes(encode_row(crf=31))[:-1] + b', "extra": {"g": 1, "g": 2}}'


def _duplicate_spaced_key() -> bytes:
    return line_bytes(encode_row(crf=31))[:-1] + b', "crf"  :  32}'


def _invalid_utf8() -> bytes:
    return line_bytes(encode_row(crf=31, src="clipMARK.y4m")).replace(b"MARK", b"\xff\xfe")


def _deep_nesting() -> bytes:
    depth = 10_000
    return line_bytes(encode_row(crf=31))[:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}"


def _missing_key() -> bytes:
    row = encode_row(crf=31)
    del row["vmaf_score"]
    return line_bytes(row)


def _lone_surrogate() -> bytes:
    # Valid JSON text, but no UTF-8 writer can put U+D800 back on disk.
    return line_bytes(encode_row(crf=31, src="clipMARK.y4m")).replace(b"MARK", b"\\ud800")


def _long_line() -> bytes:
    return line_bytes(encode_row(crf=31, extra_params="x" * 5000))


def _crlf_file(tmp_path: Path) -> None:
    good_shard(tmp_path)
    (tmp_path / "params.yaml").write_text(STRICT_READER, encoding="utf-8")
    write_bytes(tmp_path / "in/b.jsonl", b"".join(line_bytes(row) + b"\r\n" for row in rows(2, 30)))


def _bom_file(tmp_path: Path) -> None:
    good_shard(tmp_path)
    write_bytes(tmp_path / "in/b.jsonl", BOM + b"".join(line_bytes(row) + b"\n" for row in rows(2, 30)))


def _empty_file(tmp_path: Path) -> None:
    good_shard(tmp_path)
    (tmp_path / "params.yaml").write_text(STRICT_READER, encoding="utf-8")
    write_bytes(tmp_path / "in/b.jsonl", b"")


def _folder_without_jsonl(tmp_path: Path) -> None:
    good_shard(tmp_path)
    (tmp_path / "in/empty").mkdir()
    (tmp_path / "in/empty/README.txt").write_text("no shards here\n", encoding="utf-8")
    (tmp_path / "in/empty/notes.json").write_text("{}\n", encoding="utf-8")


def _dangling_link(tmp_path: Path) -> None:
    good_shard(tmp_path)
    (tmp_path / "in/link.jsonl").symlink_to("gone.jsonl")


def _dangling_link_in_folder(tmp_path: Path) -> None:
    good_shard(tmp_path, "in/shards/a.jsonl")
    (tmp_path / "in/shards/b.jsonl").symlink_to("gone.jsonl")


def _fifo(tmp_path: Path) -> None:
    good_shard(tmp_path)
    os.mkfifo(tmp_path / "in/pipe.jsonl")


def _fifo_in_folder(tmp_path: Path) -> None:
    good_shard(tmp_path, "in/shards/a.jsonl")
    os.mkfifo(tmp_path / "in/shards/pipe.jsonl")


def _output_alias(tmp_path: Path) -> None:
    good_shard(tmp_path)
    (tmp_path / "out/alias.jsonl").symlink_to("../in/a.jsonl")


#: Rows carry the 54 contract keys (~1.4 KB); the long line is twice the limit.
MAX_LINE_2500 = "merge:\n  jsonl:\n    max_line_bytes: 2500\n"
#: The reader's strict settings (the defaults read CRLF, blank lines and empty files).
STRICT_READER = "merge:\n  jsonl:\n    crlf: reject\n    blank_lines: reject\n    empty_file: reject\n"

CASES = [
    # --- bad bytes and bad lines: DataError, exit 1, file:line ---
    pytest.param(
        Case(
            _bad_second_shard(
                _valid_then(line_bytes(encode_row(crf=31)), b'{"src_sha256": "a', trailing_newline=False)
            ),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:3: ",
            ("truncated",),
        ),
        id="truncated-last-line",
    ),
    pytest.param(Case(_crlf_file, ("in/a.jsonl", "in/b.jsonl"), 1, r"in/b\.jsonl:1: ", ("CRLF",)), id="crlf"),
    pytest.param(
        Case(_bom_file, ("in/a.jsonl", "in/b.jsonl"), 1, r"in/b\.jsonl:1: ", ("byte order mark",)), id="utf8-bom"
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_invalid_utf8())),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("UTF-8",),
        ),
        id="invalid-utf8-in-string",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_duplicate_top_key())),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("duplicate", "crf"),
        ),
        id="duplicate-key",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_duplicate_spaced_key())),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("duplicate", "crf"),
        ),
        id="duplicate-key-space-before-colon",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_duplicate_nested_key())),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("duplicate",),
        ),
        id="duplicate-key-nested-object",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(b"[1, 2, 3]")),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("array",),
        ),
        id="top-level-array",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(b'"just a string"')),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("string",),
        ),
        id="top-level-string",
    ),
    pytest.param(
        Case(_bad_second_shard(_valid_then(b"null")), ("in/a.jsonl", "in/b.jsonl"), 1, r"in/b\.jsonl:2: ", ("null",)),
        id="top-level-null",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(b"{not json}")),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("invalid JSON",),
        ),
        id="invalid-json-mid-file",
    ),
    pytest.param(
        Case(_empty_file, ("in/a.jsonl", "in/b.jsonl"), 1, r"in/b\.jsonl: ", ("empty", "empty_file")), id="empty-file"
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(b"", line_bytes(encode_row(crf=31))), params=STRICT_READER),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("blank",),
        ),
        id="blank-line-mid-file",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(b"   \t", line_bytes(encode_row(crf=31))), params=STRICT_READER),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("blank",),
        ),
        id="whitespace-line-mid-file",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_long_line(), line_bytes(encode_row(crf=32))), params=MAX_LINE_2500),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("2500", "max_line_bytes"),
        ),
        id="line-over-max-line-bytes",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_long_line(), trailing_newline=False), params=MAX_LINE_2500),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("2500", "max_line_bytes"),
        ),
        id="last-line-over-max-line-bytes-no-newline",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_deep_nesting())),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("nest",),
        ),
        id="nesting-10000-deep",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_lone_surrogate())), ("in/a.jsonl", "in/b.jsonl"), 1, r"in/b\.jsonl:2: ", ()
        ),
        id="lone-surrogate-escape",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_missing_key())),
            ("in/a.jsonl", "in/b.jsonl"),
            1,
            r"in/b\.jsonl:2: ",
            ("'vmaf_score'",),
        ),
        id="missing-required-key",
    ),
    # --- inputs that cannot be opened as shards: InputError, exit 2, file ---
    pytest.param(
        Case(good_shard, ("in/a.jsonl", "in/nope.jsonl"), 2, r"in/nope\.jsonl: ", ("does not exist",)),
        id="missing-input",
    ),
    pytest.param(
        Case(_folder_without_jsonl, ("in/a.jsonl", "in/empty"), 2, r"in/empty: ", ("*.jsonl",)),
        id="folder-without-jsonl",
    ),
    pytest.param(
        Case(good_shard, ("in/a.jsonl", "in/../in/a.jsonl"), 2, r"in/a\.jsonl: ", ("twice",)), id="same-input-twice"
    ),
    pytest.param(
        Case(_dangling_link, ("in/a.jsonl", "in/link.jsonl"), 2, r"in/link\.jsonl: ", ("link",)), id="dangling-symlink"
    ),
    pytest.param(
        Case(_dangling_link_in_folder, ("in/shards",), 2, r"in/shards/b\.jsonl: ", ("link",)),
        id="dangling-symlink-in-folder",
    ),
    pytest.param(
        Case(_fifo, ("in/a.jsonl", "in/pipe.jsonl"), 2, r"in/pipe\.jsonl: ", ("FIFO",), fifos=("in/pipe.jsonl",)),
        id="fifo",
    ),
    pytest.param(
        Case(
            _fifo_in_folder, ("in/shards",), 2, r"in/shards/pipe\.jsonl: ", ("FIFO",), fifos=("in/shards/pipe.jsonl",)
        ),
        id="fifo-in-folder",
    ),
    # --- params.yaml problems: ParamsError, exit 2, params.yaml:LINE[:COL] ---
    pytest.param(
        Case(
            _params("merge:\n  dedupe:\n    keep: last\n"),
            ("in/a.jsonl",),
            2,
            r"params\.yaml:2:3: ",
            ("unknown key", "dedupe"),
        ),
        id="params-unknown-merge-key",
    ),
    pytest.param(
        Case(
            _params("merge:\n  jsonl:\n    crlf: accept\n    bom_policy: accept\n"),
            ("in/a.jsonl",),
            2,
            r"params\.yaml:4:5: ",
            ("unknown key", "bom_policy"),
        ),
        id="params-unknown-jsonl-key",
    ),
    pytest.param(
        Case(
            _params("merge:\n  required_keys: [src, crf\n  non_finite: keep\n"),
            ("in/a.jsonl",),
            2,
            r"params\.yaml:\d+:\d+: ",
            ("malformed YAML",),
        ),
        id="params-malformed-unclosed-bracket",
    ),
    pytest.param(
        Case(
            _params('merge:\n  non_finite: !!python/object/apply:os.system ["echo hi"]\n'),
            ("in/a.jsonl",),
            2,
            r"params\.yaml(:\d+){0,2}: ",
            ("tag",),
        ),
        id="params-python-tag-echo",
    ),
    # The tree-unchanged check catches the payload if it ever runs.
    pytest.param(
        Case(
            _params('merge: !!python/object/apply:os.system ["touch pwned"]\n'),
            ("in/a.jsonl",),
            2,
            r"params\.yaml(:\d+){0,2}: ",
            ("tag",),
        ),
        id="params-python-tag-touch",
    ),
    pytest.param(
        Case(
            _params("merge:\n  dedup:\n    key: [src_sha256, encoder, preset, crf, codec_tag]\n"),
            ("in/a.jsonl",),
            2,
            r"params\.yaml:3:\d+: ",
            ("codec_tag", "required_keys"),
        ),
        id="params-dedup-key-not-required",
    ),
    pytest.param(
        Case(
            _params("merge:\n  required_keys: [src_sha256, encoder, preset]\n"),
            ("in/a.jsonl",),
            2,
            r"params\.yaml(:\d+){0,2}: ",
            ("crf", "required_keys"),
        ),
        id="params-default-dedup-key-not-required",
    ),
    pytest.param(
        Case(
            _params("merge:\n  non_finite: drop\n"), ("in/a.jsonl",), 2, r"params\.yaml:2:\d+: ", ("non_finite", "keep")
        ),
        id="params-bad-choice-value",
    ),
    pytest.param(
        Case(_params("- merge\n- sample\n"), ("in/a.jsonl",), 2, r"params\.yaml(:\d+){0,2}: ", ("mapping",)),
        id="params-top-level-list",
    ),
    pytest.param(
        Case(
            _params("merge:\n  jsonl:\n    max_line_bytes: 0\n"),
            ("in/a.jsonl",),
            2,
            r"params\.yaml:3:\d+: ",
            ("max_line_bytes",),
        ),
        id="params-max-line-bytes-zero",
    ),
    # --- outputs that would overwrite or be read back as inputs: UsageError, exit 2 ---
    pytest.param(
        Case(good_shard, ("in/a.jsonl", "--output", "in/a.jsonl"), 2, r"in/a\.jsonl: ", ("input",)),
        id="output-is-the-input",
    ),
    pytest.param(
        Case(good_shard, ("in/a.jsonl", "--output", "./in/../in/a.jsonl"), 2, r"in/a\.jsonl: ", ("input",)),
        id="output-is-the-input-spelled-differently",
    ),
    pytest.param(
        Case(_output_alias, ("in/a.jsonl", "--output", "out/alias.jsonl"), 2, r"out/alias\.jsonl: ", ("input",)),
        id="output-is-a-symlink-to-the-input",
    ),
    pytest.param(
        Case(good_shard, ("in", "--output", "in/merged.jsonl"), 2, r"in/merged\.jsonl: ", ("inside the input folder",)),
        id="output-inside-input-folder",
    ),
    pytest.param(
        Case(
            good_shard,
            ("./in/", "--output", "in/sub/merged.jsonl"),
            2,
            r"in/sub/merged\.jsonl: ",
            ("inside the input folder",),
        ),
        id="output-nested-inside-input-folder",
    ),
    pytest.param(
        Case(
            good_shard,
            ("in", "--output", OUTPUT, "--rejects-out", "in/rejects.jsonl"),
            2,
            r"in/rejects\.jsonl: ",
            ("inside the input folder",),
        ),
        id="rejects-out-inside-input-folder",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_cleanly(cli: Any, tmp_path: Path, case: Case) -> None:
    (tmp_path / "out").mkdir()
    case.build(tmp_path)
    args = list(case.args)
    if "--output" not in args:
        args += ["--output", OUTPUT]
    before = snapshot(tmp_path)

    with fifo_unblocker([tmp_path / fifo for fifo in case.fifos]):
        result = cli("merge", *args)

    assert_one_error_line(result, case.where, case.mentions)
    assert result.exit_code == case.exit_code, (result.exit_code, result.stderr)
    for leftover in (OUTPUT, MANIFEST, REJECTS):
        assert not (tmp_path / leftover).exists(), f"{leftover} left behind"
    assert temp_files(tmp_path) == []
    assert snapshot(tmp_path) == before, "the run changed files under tmp_path"


# --------------------------------------------------------------------------- not failures


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_natural_key_is_rejected_not_fatal(cli: Any, tmp_path: Path, token: str) -> None:
    bad = line_bytes(encode_row(crf=21)).replace(b'"crf": 21', b'"crf": ' + token.encode())
    assert token.encode() in bad
    write_bytes(
        tmp_path / "in/a.jsonl",
        b"\n".join([line_bytes(encode_row(crf=20)), bad, line_bytes(encode_row(crf=22))]) + b"\n",
    )

    result = cli("merge", "in/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert [json.loads(line)["crf"] for line in (tmp_path / OUTPUT).read_bytes().splitlines()] == [20, 22]
    [reject] = read_rejects(tmp_path)
    assert reject["reason"] == "non_finite_key"
    assert reject["path"] == "in/a.jsonl"
    assert reject["line"] == 2
    assert not math.isfinite(reject["row"]["crf"])
    counters = read_manifest(tmp_path)["counters"]
    assert counters["rejected_non_finite_key"] == 1
    assert counters["rows_out"] == 2
    assert_accounting(counters)
    assert temp_files(tmp_path) == []


def test_non_finite_value_with_reject_policy_goes_to_rejects(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("merge:\n  non_finite: reject\n", encoding="utf-8")
    write_jsonl(
        tmp_path / "in/a.jsonl", [encode_row(crf=20), encode_row(crf=21, vmaf_score=float("nan")), encode_row(crf=22)]
    )

    result = cli("merge", "in/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    corpus = (tmp_path / OUTPUT).read_bytes()
    assert b"NaN" not in corpus
    assert [json.loads(line)["crf"] for line in corpus.splitlines()] == [20, 22]
    [reject] = read_rejects(tmp_path)
    assert (reject["reason"], reject["path"], reject["line"]) == ("non_finite_value", "in/a.jsonl", 2)
    counters = read_manifest(tmp_path)["counters"]
    assert counters["rejected_non_finite_value"] == 1
    assert counters["rows_in"] == 3
    assert counters["rows_out"] == 2
    assert_accounting(counters)


BIG_INTEGERS = [
    2**64,  # one past uint64
    -(2**63) - 1,  # one past int64
    10**30 + 7,
    -(10**40) + 3,
    2**64 - 1,  # the largest uint64: must also survive exactly
    9_223_372_036_854_775_807,  # the largest int64 (19 digits)
]


@pytest.mark.parametrize("value", BIG_INTEGERS, ids=str)
def test_integer_beyond_64_bits_is_written_back_exactly(cli: Any, tmp_path: Path, value: int) -> None:
    row = encode_row(crf=20, encode_size_bytes=value, extra_params={"seeds": [1, value]})
    write_jsonl(tmp_path / "in/a.jsonl", [row, encode_row(crf=21)])

    result = cli("merge", "in/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    first, second = (tmp_path / OUTPUT).read_bytes().splitlines(keepends=True)
    assert first == canonical(row)
    assert first.count(str(value).encode()) == 2
    assert json.loads(first)["encode_size_bytes"] == value
    assert second == canonical(encode_row(crf=21))


def test_reject_policy_sends_invalid_rows_to_rejects(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("merge:\n  on_invalid_row: reject\n", encoding="utf-8")
    missing = encode_row(crf=21)
    del missing["vmaf_score"]
    write_bytes(
        tmp_path / "in/a.jsonl",
        b"\n".join(
            [
                line_bytes(encode_row(crf=20)),
                line_bytes(missing),
                b'{"src_sha256": "a", oops}',
                line_bytes(encode_row(crf=20.0)),  # duplicate of line 1: 20 == 20.0
                line_bytes(encode_row(crf=22)),
            ]
        )
        + b"\n",
    )

    result = cli("merge", "in/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert [json.loads(line)["crf"] for line in (tmp_path / OUTPUT).read_bytes().splitlines()] == [20, 22]
    rejects = read_rejects(tmp_path)
    assert [(item["reason"], item["path"], item["line"]) for item in rejects] == [
        ("missing_key", "in/a.jsonl", 2),
        ("invalid_json", "in/a.jsonl", 3),
    ]
    assert "vmaf_score" in rejects[0]["detail"]
    manifest = read_manifest(tmp_path)
    counters = manifest["counters"]
    assert counters["rejected_missing_key"] == 1
    assert counters["rejected_invalid_json"] == 1
    assert (counters["rows_in"], counters["rows_out"], counters["duplicates"]) == (5, 2, 1)
    assert_accounting(counters)
    for record in manifest["inputs"]:
        assert_accounting(record["counters"])


def _quirky(kind: str, clean: list[dict[str, Any]]) -> bytes:
    lines = [line_bytes(row) for row in clean]
    if kind in ("blank", "all"):
        lines = [lines[0], b"", lines[1], b"  ", lines[2]]
    newline = b"\r\n" if kind in ("crlf", "all") else b"\n"
    data = b"".join(line + newline for line in lines)
    return BOM + data if kind in ("bom", "all") else data


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("crlf", "merge:\n  jsonl:\n    crlf: accept\n"),
        ("bom", "merge:\n  jsonl:\n    bom: accept\n"),
        ("blank", "merge:\n  jsonl:\n    blank_lines: skip\n"),
        ("all", LENIENT_JSONL),
    ],
)
def test_lenient_jsonl_options_give_the_clean_corpus(cli: Any, tmp_path: Path, kind: str, params: str) -> None:
    clean = rows(3)
    write_jsonl(tmp_path / "clean/a.jsonl", clean)
    reference = cli("merge", "clean/a.jsonl", "--output", "out/clean.jsonl")
    assert reference.exit_code == 0, reference.output
    write_bytes(tmp_path / "quirky/a.jsonl", _quirky(kind, clean))
    (tmp_path / "params.yaml").write_text(params, encoding="utf-8")

    result = cli("merge", "quirky/a.jsonl", "--output", "out/quirky.jsonl")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    expected = b"".join(canonical(row) for row in clean)
    assert (tmp_path / "out/clean.jsonl").read_bytes() == expected
    assert (tmp_path / "out/quirky.jsonl").read_bytes() == expected
    counters = read_manifest(tmp_path, "out/quirky.jsonl")["counters"]
    assert counters["rows_in"] == 3
    assert counters["blank_lines_skipped"] == (2 if kind in ("blank", "all") else 0)
    assert_accounting(counters)


def test_the_same_quirky_file_fails_under_default_params(cli: Any, tmp_path: Path) -> None:
    write_bytes(tmp_path / "quirky/a.jsonl", _quirky("all", rows(3)))

    result = cli("merge", "quirky/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 1
    assert_one_error_line(result, r"quirky/a\.jsonl:1: ", ("byte order mark",))


# --------------------------------------------------------------------------- previous output


@pytest.mark.parametrize(
    ("breakage", "exit_code", "where"),
    [
        ("truncated-second-shard", 1, r"in/b\.jsonl:3: "),
        ("blank-line", 1, r"in/b\.jsonl:3: "),
        ("unknown-param", 2, r"params\.yaml:2:3: "),
        ("missing-input", 2, r"in/c\.jsonl: "),
    ],
)
def test_previous_output_survives_a_failed_run(
    cli: Any, tmp_path: Path, breakage: str, exit_code: int, where: str
) -> None:
    write_jsonl(tmp_path / "in/a.jsonl", rows(3))
    write_jsonl(tmp_path / "in/b.jsonl", rows(2, first_crf=40))
    first = cli("merge", "in/a.jsonl", "in/b.jsonl", "--output", OUTPUT)
    assert first.exit_code == 0, first.output
    before = {name: (tmp_path / name).read_bytes() for name in (OUTPUT, MANIFEST, REJECTS)}

    args = ["in/a.jsonl", "in/b.jsonl"]
    if breakage == "truncated-second-shard":
        with (tmp_path / "in/b.jsonl").open("ab") as handle:
            handle.write(b'{"src_sha256": "a')
    elif breakage == "blank-line":
        (tmp_path / "params.yaml").write_text(STRICT_READER, encoding="utf-8")
        with (tmp_path / "in/b.jsonl").open("ab") as handle:
            handle.write(b"\n" + line_bytes(encode_row(crf=99)) + b"\n")
    elif breakage == "unknown-param":
        (tmp_path / "params.yaml").write_text("merge:\n  keep: last\n", encoding="utf-8")
    else:
        args.append("in/c.jsonl")

    result = cli("merge", *args, "--output", OUTPUT)

    assert result.exit_code == exit_code, result.output
    assert_one_error_line(result, where, ())
    after = {name: (tmp_path / name).read_bytes() for name in (OUTPUT, MANIFEST, REJECTS)}
    assert after == before
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("key", ENCODE_GRID_REQUIRED_KEYS)
def test_the_built_in_contract_accepts_encode_row_and_names_each_missing_key(
    cli: Any, tmp_path: Path, key: str
) -> None:
    """The matrix leans on the built-in contract (no params.yaml): encode_row passes it, and
    without any one of its keys the row is refused, naming that key."""
    row = encode_row()
    del row[key]
    write_jsonl(tmp_path / "in/a.jsonl", [encode_row(crf=40), row])
    result = cli("merge", "in/a.jsonl", "--output", OUTPUT)
    assert result.exit_code == 1, result.output
    assert_one_error_line(result, r"in/a\.jsonl:2: ", (f"missing required key {key!r}",))
