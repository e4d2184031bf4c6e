"""Bad input to ``corpusprov aggregate``: one clear line, the right exit code, and nothing lost.

Mirrors ``test_merge_bad_input.py`` for the aggregate stage. Every case drives the real CLI
in-process from ``tmp_path`` (the ``cli`` fixture) with its own ``params.yaml`` built from
the shipped ``aggregate`` group (so the shipped corpus labels resolve), and checks the
contract from SPEC.md "Bad input gets a clear error and loses nothing": the exit code
(1 bad data, 2 usage / missing files / params), exactly one ``corpusprov: error:`` line on
stderr naming the file (and line, and for params the column) with a fix after ``; ``, no
traceback, and a ``tmp_path`` tree byte-for-byte as it was (no corpus, manifest, rejects,
staging or spill file appeared, no input was touched). Rows the contract says to reject
rather than fail on must land in the rejects file, be counted, and add up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, write_jsonl
from tests.test_merge_bad_input import (
    BOM,
    TEMP_PREFIX,
    assert_one_error_line,
    read_rejects,
    snapshot,
    temp_files,
    write_bytes,
)

OUTPUT = "out/corpus.jsonl"
MANIFEST = "out/corpus.jsonl.manifest.json"
REJECTS = "out/corpus.rejects.jsonl"


# --------------------------------------------------------------------------- params


def _shipped_aggregate_group() -> str:
    """The ``aggregate:`` group of the template's params.yaml, verbatim (comments included)."""
    lines = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(index for index, line in enumerate(lines) if line.startswith("aggregate:"))
    end = next(
        (index for index in range(start + 1, len(lines)) if lines[index][:1] not in (" ", "#", "\n")), len(lines)
    )
    return "".join(lines[start:end])


AGGREGATE_GROUP = _shipped_aggregate_group()


def edited(*edits: tuple[str, str]) -> str:
    """The shipped aggregate group with each ``old`` (which must occur once) replaced by ``new``."""
    text = AGGREGATE_GROUP
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the shipped group"
        text = text.replace(old, new)
    return text


def with_scale(entry: str) -> str:
    """The shipped group with one more entry at the top of ``scales``."""
    return edited(("\n  scales:\n", "\n  scales:\n" + entry))


def locate(text: str, line_text: str) -> tuple[int, int]:
    """1-based line and column of the key on the one line whose content is ``line_text``."""
    found = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip() == line_text]
    assert len(found) == 1, f"{line_text!r} is on {len(found)} lines"
    number, line = found[0]
    return number, len(line) - len(line.lstrip()) + 1


def write_params(tmp_path: Path, text: str = AGGREGATE_GROUP) -> None:
    (tmp_path / "params.yaml").write_text(text, encoding="utf-8")


MAX_LINE_1000 = edited(("max_line_bytes: 67108864", "max_line_bytes: 1000"))
REJECT_INVALID = edited(("on_invalid_row: fail", "on_invalid_row: reject"))
#: The reader's strict settings: CRLF, blank lines and empty files refused (the defaults
#: read them, as the original scripts do).
STRICT_READER = edited(
    ("    crlf: accept\n", "    crlf: reject\n"),
    ("    blank_lines: skip\n", "    blank_lines: reject\n"),
    ("    empty_file: accept\n", "    empty_file: reject\n"),
)


# --------------------------------------------------------------------------- rows and shards


def mos_row(index: int, **overrides: Any) -> dict[str, Any]:
    """A valid MOS row on lsvq's 1-5 scale with a distinct ``src_sha256``; override any field."""
    row: dict[str, Any] = {
        "src": f"clip-{index:03d}.mp4",
        "src_sha256": f"{index:064x}",
        "mos": 3.25,
        "corpus": "lsvq",
        "mos_std_dev": 0.5,
    }
    row.update(overrides)
    return row


def line_bytes(row: dict[str, Any]) -> bytes:
    """One row as a stdlib-json line without its newline (NaN allowed)."""
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def good_shard(tmp_path: Path, name: str = "in/a.jsonl") -> Path:
    """A clean shard read (and resolved) before the bad one."""
    return write_jsonl(tmp_path / name, [mos_row(1), mos_row(2, corpus="konvid-1k", mos=4.5)])


def _valid_then(*bad_lines: bytes, trailing_newline: bool = True) -> bytes:
    """One valid row, then ``bad_lines``; the first bad one is line 2."""
    body = b"\n".join([line_bytes(mos_row(30)), *bad_lines])
    return body + b"\n" if trailing_newline else body


def _bad_second_shard(data: bytes, params: str = AGGREGATE_GROUP) -> Callable[[Path], None]:
    """A good ``in/a.jsonl`` and the bad ``in/b.jsonl``."""

    def build(tmp_path: Path) -> None:
        write_params(tmp_path, params)
        good_shard(tmp_path)
        write_bytes(tmp_path / "in/b.jsonl", data)

    return build


def _good(params: str = AGGREGATE_GROUP) -> Callable[[Path], None]:
    def build(tmp_path: Path) -> None:
        write_params(tmp_path, params)
        good_shard(tmp_path)

    return build


def _crlf_file(tmp_path: Path) -> None:
    write_params(tmp_path, STRICT_READER)
    good_shard(tmp_path)
    write_bytes(tmp_path / "in/b.jsonl", b"".join(line_bytes(mos_row(index)) + b"\r\n" for index in (30, 31)))


def _bom_file(tmp_path: Path) -> None:
    write_params(tmp_path)
    good_shard(tmp_path)
    write_bytes(tmp_path / "in/b.jsonl", BOM + b"".join(line_bytes(mos_row(index)) + b"\n" for index in (30, 31)))


def _empty_file(tmp_path: Path) -> None:
    write_params(tmp_path, STRICT_READER)
    good_shard(tmp_path)
    write_bytes(tmp_path / "in/b.jsonl", b"")


def _folder_without_jsonl(tmp_path: Path) -> None:
    write_params(tmp_path)
    good_shard(tmp_path)
    (tmp_path / "in/empty").mkdir()
    (tmp_path / "in/empty/README.txt").write_text("no shards here\n", encoding="utf-8")
    (tmp_path / "in/empty/notes.json").write_text("{}\n", encoding="utf-8")


def _invalid_utf8() -> bytes:
    return line_bytes(mos_row(31, src="clipMARK.mp4")).replace(b"MARK", b"\xff\xfe")


def _duplicate_key() -> bytes:
    # Two `mos` values in one object: which one is the score is anybody's guess.
    return line_bytes(mos_row(31))[:-1] + b', "mos": 1.5}'


def _deep_nesting() -> bytes:
    depth = 10_000
    return line_bytes(mos_row(31))[:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}"


def _long_line() -> bytes:
    return line_bytes(mos_row(31, encoder_upstream="x" * 2000))


def _missing_mos() -> bytes:
    row = mos_row(31)
    del row["mos"]
    return line_bytes(row)


# --------------------------------------------------------------------------- the failure matrix


@dataclass(frozen=True)
class Case:
    """One bad input: how to build it, how to run aggregate on it, what must come out."""

    build: Callable[[Path], object]
    """Creates params.yaml and inputs under tmp_path."""
    args: tuple[str, ...]
    """INPUT arguments and options after ``aggregate``; ``--output out/corpus.jsonl`` is added
    unless the case gives its own ``--output``."""
    exit_code: int
    """1 for bad data, 2 for usage, missing files and params problems."""
    where: str
    """Regex the message must start with: the file, and ``:LINE`` where a line applies."""
    mentions: tuple[str, ...] = ()
    """Fragments the message must contain (case-insensitive)."""


TWO = ("in/a.jsonl", "in/b.jsonl")

CASES = [
    # --- bad bytes and bad lines: DataError, exit 1, file:line ---
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(line_bytes(mos_row(31)), b'{"src_sha256": "a', trailing_newline=False)),
            TWO,
            1,
            r"in/b\.jsonl:3: ",
            ("truncated",),
        ),
        id="truncated-last-line",
    ),
    pytest.param(Case(_crlf_file, TWO, 1, r"in/b\.jsonl:1: ", ("CRLF", "aggregate.jsonl.crlf")), id="crlf"),
    pytest.param(
        Case(_bom_file, TWO, 1, r"in/b\.jsonl:1: ", ("byte order mark", "aggregate.jsonl.bom")), id="utf8-bom"
    ),
    pytest.param(
        Case(_bad_second_shard(_valid_then(_invalid_utf8())), TWO, 1, r"in/b\.jsonl:2: ", ("UTF-8",)), id="invalid-utf8"
    ),
    pytest.param(
        Case(_bad_second_shard(_valid_then(_duplicate_key())), TWO, 1, r"in/b\.jsonl:2: ", ("duplicate", "mos")),
        id="duplicate-key",
    ),
    pytest.param(
        Case(_bad_second_shard(_valid_then(b"[1, 2, 3]")), TWO, 1, r"in/b\.jsonl:2: ", ("array",)), id="top-level-array"
    ),
    pytest.param(Case(_empty_file, TWO, 1, r"in/b\.jsonl: ", ("empty", "aggregate.jsonl.empty_file")), id="empty-file"),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(b"", line_bytes(mos_row(31))), STRICT_READER),
            TWO,
            1,
            r"in/b\.jsonl:2: ",
            ("blank", "aggregate.jsonl.blank_lines"),
        ),
        id="blank-line",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(_long_line(), line_bytes(mos_row(32))), MAX_LINE_1000),
            TWO,
            1,
            r"in/b\.jsonl:2: ",
            ("1000", "aggregate.jsonl.max_line_bytes"),
        ),
        id="line-over-max-line-bytes",
    ),
    pytest.param(
        Case(_bad_second_shard(_valid_then(_deep_nesting())), TWO, 1, r"in/b\.jsonl:2: ", ("nest",)),
        id="nesting-10000-deep",
    ),
    pytest.param(
        Case(_bad_second_shard(_valid_then(_missing_mos())), TWO, 1, r"in/b\.jsonl:2: ", ("'mos'",)),
        id="missing-required-key",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(line_bytes(mos_row(31, mos="high")))),
            TWO,
            1,
            r"in/b\.jsonl:2: ",
            ("mos", "'high'", "on_invalid_row"),
        ),
        id="mos-is-a-string",
    ),
    pytest.param(
        Case(
            _bad_second_shard(_valid_then(line_bytes(mos_row(31, corpus=7)))),
            TWO,
            1,
            r"in/b\.jsonl:2: ",
            ("label", "7"),
        ),
        id="corpus-label-is-a-number",
    ),
    # --- inputs that cannot be opened as shards: InputError, exit 2, file ---
    pytest.param(
        Case(_good(), ("in/a.jsonl", "in/nope.jsonl"), 2, r"in/nope\.jsonl: ", ("does not exist",)), id="missing-input"
    ),
    pytest.param(
        Case(_folder_without_jsonl, ("in/a.jsonl", "in/empty"), 2, r"in/empty: ", ("*.jsonl",)),
        id="folder-without-jsonl",
    ),
    # --- outputs that would overwrite or be read back as inputs: UsageError, exit 2 ---
    pytest.param(
        Case(_good(), ("in/a.jsonl", "--output", "in/a.jsonl"), 2, r"in/a\.jsonl: ", ("input",)),
        id="output-is-the-input",
    ),
    pytest.param(
        Case(
            _good(),
            ("in", "--output", "in/aggregated.jsonl"),
            2,
            r"in/aggregated\.jsonl: ",
            ("inside the input folder",),
        ),
        id="output-inside-input-folder",
    ),
    # --- params.yaml problems: ParamsError, exit 2, params.yaml:LINE:COL ---
    pytest.param(
        Case(
            _good(
                edited(
                    (
                        "required_keys:\n  - src\n  - src_sha256\n  - mos\n  - corpus\n",
                        "required_keys: [src, src_sha256, mos, corpus\n",
                    )
                )
            ),
            ("in/a.jsonl",),
            2,
            r"params\.yaml:\d+:\d+: ",
            ("malformed YAML",),
        ),
        id="params-malformed",
    ),
    pytest.param(
        Case(
            _good(edited(("range_slack: 0.05", 'range_slack: !!python/object/apply:os.system ["touch pwned"]'))),
            ("in/a.jsonl",),
            2,
            r"params\.yaml:\d+:\d+: ",
            ("tag",),
        ),
        id="params-python-tag",
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

    result = cli("aggregate", *args)

    assert_one_error_line(result, case.where, case.mentions)
    assert result.exit_code == case.exit_code, (result.exit_code, result.stderr)
    for leftover in (OUTPUT, MANIFEST, REJECTS):
        assert not (tmp_path / leftover).exists(), f"{leftover} left behind"
    assert temp_files(tmp_path) == []
    assert snapshot(tmp_path) == before, "the run changed files under tmp_path"


def test_python_tag_payload_never_runs(cli: Any, tmp_path: Path) -> None:
    write_params(tmp_path, 'aggregate: !!python/object/apply:os.system ["touch pwned"]\n')
    good_shard(tmp_path)

    result = cli("aggregate", "in/a.jsonl", "--output", OUTPUT)

    assert result.exit_code == 2, result.output
    assert_one_error_line(result, r"params\.yaml(:\d+){0,2}: ", ("tag",))
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- params before inputs


def _entry(name: str, *lines: str) -> str:
    return f"    {name}:\n" + "".join(f"      {line}\n" for line in lines)


# (params text, the line the error must point at, fragments the message must contain)
SCALE_ERRORS = [
    pytest.param(
        with_scale(_entry("broken-equal", "min: 3.5", "max: 3.5", "higher_is_better: true", "label: acr-1-5")),
        "min: 3.5",
        ("broken-equal", "3.5"),
        id="min-equals-max",
    ),
    pytest.param(
        with_scale(_entry("broken-inverted", "min: 9", "max: 2.5", "higher_is_better: true", "label: acr-1-5")),
        "min: 9",
        ("broken-inverted", "9"),
        id="min-above-max",
    ),
    pytest.param(
        edited(("higher_is_better: false", "higher_is_better: down")),
        "higher_is_better: down",
        ("live-vqa", "down"),
        id="direction-down",
    ),
    pytest.param(
        with_scale(_entry("broken-nolabel", "min: 1", "max: 5", "higher_is_better: true")),
        "broken-nolabel:",
        ("broken-nolabel", "label"),
        id="missing-label",
    ),
    pytest.param(
        with_scale(_entry("broken-nomin", "max: 5", "higher_is_better: true", "label: acr-1-5")),
        "broken-nomin:",
        ("broken-nomin", "min"),
        id="missing-min",
    ),
    pytest.param(
        with_scale("    broken-list: [1, 5, true, acr-1-5]\n"),
        "broken-list: [1, 5, true, acr-1-5]",
        ("broken-list", "mapping"),
        id="entry-is-a-list",
    ),
    pytest.param(
        edited(("  overrides: {}\n", "  overrides:\n    in/b.jsonl: no-such-corpus\n")),
        "in/b.jsonl: no-such-corpus",
        ("no-such-corpus",),
        id="override-label-without-scale",
    ),
    pytest.param(
        edited(("range_slack: 0.05", "range_slack: -1")), "range_slack: -1", ("range_slack",), id="range-slack-negative"
    ),
    pytest.param(
        edited(
            (
                "required_keys:\n  - src\n  - src_sha256\n  - mos\n  - corpus\n",
                "required_keys: [src, src_sha256, corpus]\n",
            )
        ),
        "required_keys: [src, src_sha256, corpus]",
        ("required_keys", "mos"),
        id="required-keys-without-mos",
    ),
    pytest.param(
        with_scale(
            _entry("broken-extra", "min: 1", "max: 5", "higher_is_better: true", "label: acr-1-5", "direction: up")
        ),
        "direction: up",
        ("unknown key", "direction"),
        id="unknown-key-in-scale",
    ),
    pytest.param(
        edited(("  range_slack: 0.05\n", "  range_slack: 0.05\n  range_slak: 0.1\n")),
        "range_slak: 0.1",
        ("unknown key", "range_slak"),
        id="unknown-key-in-group",
    ),
]

OVERRIDE_NOT_AN_INPUT = pytest.param(
    edited(("  overrides: {}\n", "  overrides:\n    in/elsewhere.jsonl: lsvq\n")),
    "in/elsewhere.jsonl: lsvq",
    ("in/elsewhere.jsonl",),
    id="override-path-not-an-input",
)


def _invalid_json_input(tmp_path: Path) -> tuple[str, ...]:
    good_shard(tmp_path)
    write_bytes(tmp_path / "in/b.jsonl", _valid_then(b"{not json}"))
    return TWO


def _missing_input(tmp_path: Path) -> tuple[str, ...]:
    good_shard(tmp_path)
    return ("in/a.jsonl", "in/nope.jsonl")


def _params_error_first(
    cli: Any,
    tmp_path: Path,
    params: str,
    anchor: str,
    mentions: tuple[str, ...],
    inputs: Callable[[Path], tuple[str, ...]],
) -> None:
    write_params(tmp_path, params)
    args = inputs(tmp_path)
    (tmp_path / "out").mkdir()
    line, column = locate(params, anchor)
    before = snapshot(tmp_path)

    result = cli("aggregate", *args, "--output", OUTPUT)

    assert_one_error_line(result, rf"params\.yaml:{line}:{column}: ", mentions)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert temp_files(tmp_path) == []
    assert snapshot(tmp_path) == before, "the run changed files under tmp_path"


@pytest.mark.parametrize("inputs", [_invalid_json_input, _missing_input], ids=["invalid-json", "missing-file"])
@pytest.mark.parametrize(("params", "anchor", "mentions"), SCALE_ERRORS)
def test_params_error_is_reported_before_any_input(
    cli: Any,
    tmp_path: Path,
    params: str,
    anchor: str,
    mentions: tuple[str, ...],
    inputs: Callable[[Path], tuple[str, ...]],
) -> None:
    _params_error_first(cli, tmp_path, params, anchor, mentions, inputs)


# An override can only be checked against the inputs once they are resolved, so a missing
# file may legitimately be reported first; an input that exists but holds bad JSON may not.
@pytest.mark.parametrize(("params", "anchor", "mentions"), [OVERRIDE_NOT_AN_INPUT])
def test_override_naming_no_input_is_reported_before_reading(
    cli: Any, tmp_path: Path, params: str, anchor: str, mentions: tuple[str, ...]
) -> None:
    _params_error_first(cli, tmp_path, params, anchor, mentions, _invalid_json_input)


# --------------------------------------------------------------------------- rejected, not failed


def read_manifest(tmp_path: Path, output: str = OUTPUT) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((tmp_path / (output + ".manifest.json")).read_bytes())
    return loaded


def assert_adds_up(manifest: dict[str, Any]) -> None:
    """Per input and in total: in == out + duplicates + rejected, as ``manifest.accounting`` names them."""
    accounting = manifest["accounting"]
    parts = [*accounting["out"], *accounting["duplicates"], *accounting["rejected"]]

    def check(counters: dict[str, int]) -> None:
        assert counters[accounting["in"]] == sum(counters[name] for name in parts), counters

    check(manifest["counters"])
    for record in manifest["inputs"]:
        check(record["counters"])
    for name in [accounting["in"], *parts]:
        assert manifest["counters"][name] == sum(record["counters"][name] for record in manifest["inputs"]), name


REJECTED = [
    pytest.param({"corpus": "no-such-corpus"}, AGGREGATE_GROUP, "unknown_corpus", id="unknown-corpus"),
    pytest.param({"mos": math.nan}, AGGREGATE_GROUP, "non_finite_mos", id="nan-mos"),
    pytest.param({"mos": math.inf}, AGGREGATE_GROUP, "non_finite_mos", id="infinity-mos"),
    pytest.param({"mos": -math.inf}, AGGREGATE_GROUP, "non_finite_mos", id="minus-infinity-mos"),
    pytest.param({"mos": 6.2}, AGGREGATE_GROUP, "bad_scale", id="mos-above-range"),
    pytest.param({"mos": 0.5}, AGGREGATE_GROUP, "bad_scale", id="mos-below-range"),
    pytest.param({"mos": "high"}, REJECT_INVALID, "invalid_mos", id="mos-string-reject-policy"),
    pytest.param({"corpus": 7}, REJECT_INVALID, "invalid_label", id="label-number-reject-policy"),
]


@pytest.mark.parametrize(("bad", "params", "reason"), REJECTED)
def test_bad_row_is_rejected_counted_and_kept(
    cli: Any, tmp_path: Path, bad: dict[str, Any], params: str, reason: str
) -> None:
    write_params(tmp_path, params)
    good_shard(tmp_path)
    bad_row = mos_row(11, **bad)
    write_jsonl(tmp_path / "in/b.jsonl", [mos_row(10), bad_row, mos_row(12, corpus="live-vqc", mos=61.5)])

    result = cli("aggregate", *TWO, "--output", OUTPUT)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    written = [json.loads(line) for line in (tmp_path / OUTPUT).read_bytes().splitlines()]
    assert sorted(row["src_sha256"] for row in written) == [f"{index:064x}" for index in (1, 2, 10, 12)]
    [reject] = read_rejects(tmp_path)
    assert (reject["reason"], reject["path"], reject["line"]) == (reason, "in/b.jsonl", 2)
    assert reject["row"]["src_sha256"] == bad_row["src_sha256"]
    kept = reject["row"]["mos"]
    expected = bad_row["mos"]
    assert kept == expected or (math.isnan(kept) and math.isnan(expected)), (kept, expected)
    manifest = read_manifest(tmp_path)
    counters = manifest["counters"]
    assert counters[f"rejected_{reason}"] == 1
    assert (counters["rows_in"], counters["rows_out"]) == (5, 4)
    by_path = {record["path"]: record["counters"] for record in manifest["inputs"]}
    assert by_path["in/b.jsonl"][f"rejected_{reason}"] == 1
    assert by_path["in/a.jsonl"][f"rejected_{reason}"] == 0
    assert f"rejected_{reason}" in manifest["accounting"]["rejected"]
    assert_adds_up(manifest)
    rejects_entry = next(entry for entry in manifest["outputs"] if entry["role"] == "rejects")
    assert (rejects_entry["path"], rejects_entry["rows"]) == (REJECTS, 1)
    assert temp_files(tmp_path) == []


# --------------------------------------------------------------------------- previous output


@pytest.mark.parametrize(
    ("breakage", "exit_code", "where"),
    [
        ("truncated-second-shard", 1, r"in/b\.jsonl:3: "),
        ("blank-line", 1, r"in/b\.jsonl:3: "),
        ("mos-string", 1, r"in/b\.jsonl:3: "),
        ("scale-min-equals-max", 2, r"params\.yaml:\d+:\d+: "),
        ("missing-input", 2, r"in/c\.jsonl: "),
    ],
)
def test_previous_output_survives_a_failed_run(
    cli: Any, tmp_path: Path, breakage: str, exit_code: int, where: str
) -> None:
    write_params(tmp_path)
    good_shard(tmp_path)
    write_jsonl(tmp_path / "in/b.jsonl", [mos_row(10), mos_row(11, corpus="no-such-corpus")])
    first = cli("aggregate", *TWO, "--output", OUTPUT)
    assert first.exit_code == 0, first.output
    names = (OUTPUT, MANIFEST, REJECTS)
    before = {name: (tmp_path / name).read_bytes() for name in names}
    assert before[REJECTS], "the good run should have rejected one row"

    args = list(TWO)
    if breakage == "truncated-second-shard":
        with (tmp_path / "in/b.jsonl").open("ab") as handle:
            handle.write(b'{"src_sha256": "a')
    elif breakage == "blank-line":
        write_params(tmp_path, STRICT_READER)
        with (tmp_path / "in/b.jsonl").open("ab") as handle:
            handle.write(b"\n" + line_bytes(mos_row(12)) + b"\n")
    elif breakage == "mos-string":
        with (tmp_path / "in/b.jsonl").open("ab") as handle:
            handle.write(line_bytes(mos_row(12, mos="high")) + b"\n")
    elif breakage == "scale-min-equals-max":
        write_params(
            tmp_path,
            edited(
                (
                    "      min: 0\n      max: 100\n      higher_is_better: false",
                    "      min: 100\n      max: 100\n      higher_is_better: false",
                )
            ),
        )
    else:
        args.append("in/c.jsonl")

    result = cli("aggregate", *args, "--output", OUTPUT)

    assert result.exit_code == exit_code, result.output
    assert_one_error_line(result, where, ())
    after = {name: (tmp_path / name).read_bytes() for name in names}
    assert after == before
    assert temp_files(tmp_path) == []


# --------------------------------------------------------------------------- the spill file


def test_spill_file_is_removed_when_a_later_row_fails(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows already spilled, then an invalid row fails the run: the spill goes too."""
    import corpusprov.stages.aggregate as aggregate_module
    from corpusprov.stages.spill import Spill

    write_params(tmp_path)
    write_jsonl(tmp_path / "in/a.jsonl", [mos_row(1), mos_row(2)])
    (tmp_path / "in/b.jsonl").write_text('{"broken": \n', encoding="utf-8")
    spills: list[Path] = []

    class RecordingSpill(Spill):
        def __init__(self, near: Path, display: str) -> None:
            super().__init__(near, display)
            spills.append(self.path)

    monkeypatch.setattr(aggregate_module, "Spill", RecordingSpill)
    (tmp_path / "out").mkdir()

    result = cli("aggregate", "in/a.jsonl", "in/b.jsonl", "--output", OUTPUT)

    assert result.exit_code == 1, result.output
    assert_one_error_line(result, r"in/b\.jsonl:1: ", ("invalid JSON",))
    [spill] = spills
    assert spill.name.startswith(TEMP_PREFIX)
    located = tmp_path / spill  # the product names it relative to the working directory
    assert located.parent == tmp_path / "out"
    assert not located.exists()
    for leftover in (OUTPUT, MANIFEST, REJECTS):
        assert not (tmp_path / leftover).exists(), f"{leftover} left behind"
    assert temp_files(tmp_path) == []
