"""The JSONL layer: canonical bytes (golden), hashing of exactly the bytes read, careful parsing."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.errors import DataError
from corpusprov.io.canonical import canonical_line
from corpusprov.io.jsonl import JsonlOptions, JsonlReader, is_blank
from corpusprov.io.rowparse import parse_row


@pytest.mark.parametrize(
    ("value", "golden"),
    [
        ({"a": 5e-05}, b'{"a":0.00005}\n'),
        ({"a": 0.1}, b'{"a":0.1}\n'),
        ({"a": 23.0}, b'{"a":23.0}\n'),
        ({"a": 23}, b'{"a":23}\n'),
        ({"a": 1e16}, b'{"a":1e+16}\n'),
        ({"a": 1.5e300}, b'{"a":1.5e+300}\n'),
        ({"a": -0.0}, b'{"a":-0.0}\n'),
        ({"a": 123456789.125}, b'{"a":123456789.125}\n'),
        ({"b": 1, "a": {"d": 2, "c": [3, "x"]}}, b'{"a":{"c":[3,"x"],"d":2},"b":1}\n'),
        ({"src": "Café_東京.y4m"}, '{"src":"Café_東京.y4m"}\n'.encode()),
        ({"q": 'say "hi"\\'}, b'{"q":"say \\"hi\\"\\\\"}\n'),
        ({"t": True, "f": False, "n": None}, b'{"f":false,"n":null,"t":true}\n'),
    ],
)
def test_canonical_bytes_are_pinned(value: dict[str, Any], golden: bytes) -> None:
    assert canonical_line(value) == golden


@pytest.mark.parametrize(
    ("value", "golden"),
    [
        ({"a": float("nan"), "b": 1.5}, b'{"a":NaN,"b":1.5}\n'),
        ({"a": float("inf")}, b'{"a":Infinity}\n'),
        ({"a": [float("-inf"), 2**70]}, b'{"a":[-Infinity,1180591620717411303424]}\n'),
        ({"a": -(2**64)}, b'{"a":-18446744073709551616}\n'),
    ],
)
def test_special_values_are_written_as_python_json_writes_them(value: dict[str, Any], golden: bytes) -> None:
    assert canonical_line(value, special=True) == golden
    reread = json.loads(golden)
    assert json.dumps(reread, sort_keys=True) == json.dumps(value, sort_keys=True)


def _read(path: Path, options: JsonlOptions | None = None) -> tuple[list[Any], JsonlReader]:
    reader = JsonlReader(path, path.name, options)
    rows = []
    for line_no, row, special, error in reader:
        if error is not None and is_blank(error):
            continue
        rows.append((line_no, row, special, error))
    return rows, reader


def test_reader_hashes_exactly_the_bytes_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    # Big enough to span several read chunks.
    payload = b"".join(b'{"i":%d,"pad":"%s"}\n' % (i, b"x" * 500) for i in range(20000))
    path.write_bytes(payload)
    rows, reader = _read(path)
    assert [row["i"] for _, row, _, _ in rows] == list(range(20000))
    assert reader.digest.sha256 == hashlib.sha256(payload).hexdigest()
    assert reader.digest.md5 == hashlib.md5(payload).hexdigest()  # noqa: S324
    assert reader.digest.bytes == len(payload)


def test_nan_tokens_are_read_and_flagged(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a":NaN,"b":-Infinity}\n{"a":1}\n')
    rows, _ = _read(path)
    (_, first, special, error), (_, second, plain, _) = rows
    assert error is None and special and not plain
    assert math.isnan(first["a"]) and first["b"] == float("-inf")
    assert second == {"a": 1}


def test_integer_beyond_64_bits_is_read_exactly(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"big":123456789012345678901234567890}\n')
    rows, _ = _read(path)
    _, row, special, _ = rows[0]
    assert row["big"] == 123456789012345678901234567890 and special
    assert canonical_line(row, special=special) == b'{"big":123456789012345678901234567890}\n'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"a":1,"a":2}', "duplicate_key"),
        (b'{"a":{"x":1,"x":1}}', "duplicate_key"),
        (b'{"a" :1, "a" : 2}', "duplicate_key"),
        (b'{"a":"q\\":","a":1}', "duplicate_key"),
        (b"[1,2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b'{"a":"\xff"}', "invalid_utf8"),
        (b'{"a":', "truncated_line"),
        (b'{"a": tru', "truncated_line"),
        (b'{"a": tru}', "invalid_json"),
        (b'{"a":' + b"[" * 10000 + b"]" * 10000 + b"}", "invalid_json"),
    ],
)
def test_bad_lines_come_back_as_line_errors(tmp_path: Path, line: bytes, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(line)  # no trailing newline: the last line
    rows, _ = _read(path)
    _, row, _, error = rows[0]
    assert row is None and error is not None
    assert error.reason == reason
    assert error.line == 1 and error.path == "bad.jsonl"


def test_invalid_json_in_the_middle_is_not_called_truncated(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":\n{"a":2}\n')
    rows, _ = _read(path)
    assert rows[1][3] is not None and rows[1][3].reason == "invalid_json" and rows[1][0] == 2


def test_escaped_quotes_and_colons_in_strings_are_not_duplicates() -> None:
    row, special = parse_row(b'{"a":"x\\":y","b":"\\\\","c":{"d":"\\":"}}')
    assert row == {"a": 'x":y', "b": "\\", "c": {"d": '":'}} and not special


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (b"\xef\xbb\xbf{}\n", JsonlOptions(), "byte order mark"),
        (b'{"a":1}\r\n', JsonlOptions(crlf="reject"), "CRLF"),
        (b'{"a":1}\n\n{"a":2}\n', JsonlOptions(blank_lines="reject"), "blank line"),
        (b"", JsonlOptions(empty_file="reject"), "empty"),
        (b'{"a":"' + b"x" * 200 + b'"}\n', JsonlOptions(max_line_bytes=100), "longer than 100 bytes"),
    ],
)
def test_file_level_problems_raise_with_location(
    tmp_path: Path, content: bytes, options: JsonlOptions, message: str
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        _read(path, options)
    assert caught.value.path == "f.jsonl"
    assert "params.yaml" in str(caught.value)


def test_default_options_read_what_the_original_scripts_read(tmp_path: Path) -> None:
    """CRLF endings, blank lines and empty files are read by default (and counted)."""
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a":1}\r\n\r\n{"a":2}\r\n')
    rows, reader = _read(path)
    assert [r[1] for r in rows if r[1] is not None] == [{"a": 1}, {"a": 2}]
    assert (reader.stats.crlf_lines, reader.stats.blank_lines) == (3, 1)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert _read(empty)[0] == []


def test_tolerant_options_give_the_same_rows_and_hash_the_raw_bytes(tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b'{"a":1}\n{"a":2}\n')
    messy = tmp_path / "messy.jsonl"
    raw = b'\xef\xbb\xbf{"a":1}\r\n\r\n   \n{"a":2}\r\n'
    messy.write_bytes(raw)
    options = JsonlOptions(bom="accept", crlf="accept", blank_lines="skip")
    clean_rows, _ = _read(clean)
    messy_rows, reader = _read(messy, options)
    assert [r[1] for r in messy_rows] == [r[1] for r in clean_rows]
    assert reader.stats.bom and reader.stats.crlf_lines == 3 and reader.stats.blank_lines == 2
    assert reader.digest.sha256 == hashlib.sha256(raw).hexdigest()


def test_last_line_without_newline_is_a_row(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}')
    rows, _ = _read(path)
    assert [row for _, row, _, _ in rows] == [{"a": 1}, {"a": 2}]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_round_trip_through_python_json(row: dict[str, Any]) -> None:
    """Whatever Python's json writes, we read back and write canonically, losslessly."""
    text = json.dumps(row, ensure_ascii=False)
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be UTF-8 on disk
    parsed, special = parse_row(encoded)
    line = canonical_line(parsed, special=special)
    again, _ = parse_row(line.rstrip(b"\n"))
    assert json.dumps(again, sort_keys=True) == json.dumps(row, sort_keys=True)
    assert canonical_line(again, special=special) == line


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from([0, 1, 2, 700, 90_000, 300_000, 1_100_000]).flatmap(
            lambda size: st.tuples(st.just(size), st.booleans())
        ),
        max_size=12,
    ),
    terminated=st.booleans(),
)
def test_blocks_hold_every_line_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, lines: list[tuple[int, bool]], terminated: bool
) -> None:
    """Cut into blocks across 1 MiB reads: the blocks give back the file's
    lines, numbered, with the CRLF count and the hash of every byte (lines up to a megabyte and more)."""
    raw = [(b"x" * size) + (b"\r" if crlf and size else b"") for size, crlf in lines]
    data = b"\n".join(raw) + (b"\n" if terminated and raw else b"")
    path = tmp_path_factory.mktemp("blocks") / "shard.jsonl"
    path.write_bytes(data)
    reader = JsonlReader(path, "shard.jsonl", JsonlOptions())
    seen: list[bytes] = []
    for block in reader.blocks():
        assert block.first_line == len(seen) + 1
        seen.extend(block.lines)
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()  # the empty piece after the final newline (or the whole of an empty file)
    assert seen == expected
    assert reader.stats.crlf_lines == sum(1 for line in expected if line.endswith(b"\r"))
    assert reader.digest.sha256 == hashlib.sha256(data).hexdigest()
