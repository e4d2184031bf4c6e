"""Fuzzing the two parsers users feed: JSONL shards and params.yaml.

Random bytes, random JSON values and random YAML go in; the only outcomes allowed are
success or one of our typed errors (``CorpusprovError`` subclasses, ``ParamsError`` for
params). A stray ``KeyError``, ``RecursionError`` or ``UnicodeError`` would reach the user
as "internal error" (exit 70), so any other exception fails the test. The CLI is driven too:
exit 0, 1 or 2 only, and the output folder agrees with the exit code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from typer.testing import CliRunner

from corpusprov.cli import app
from corpusprov.errors import CorpusprovError, ParamsError
from corpusprov.io.canonical import canonical_line
from corpusprov.io.jsonl import JsonlOptions, JsonlReader, LineError, is_blank
from corpusprov.params.load import load_params
from corpusprov.params.scales import aggregate_params
from corpusprov.params.stages import merge_params
from corpusprov.record.manifest import accounting_problems, load_manifest
from tests.conftest import encode_row

# Derandomized: CI runs the same examples every time (a failure reproduces); raise
# max_examples locally to hunt further.
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

STRICT = JsonlOptions()
PERMISSIVE = JsonlOptions(bom="accept", crlf="accept", blank_lines="skip")
TINY_LINES = JsonlOptions(bom="accept", crlf="accept", blank_lines="skip", max_line_bytes=40)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example (hypothesis does not mix with function-scoped tmp_path)."""
    return tmp_path_factory.mktemp("fuzz")


# --------------------------------------------------------------------------- strategies

# Pieces that steer random bytes into the reader's interesting corners: BOM, CRLF, NaN
# tokens, 19+ digit integers, escaped quotes, surrogate escapes, duplicate keys, nesting.
FRAGMENTS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b":",
    b",",
    b" ",
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b"\xef\xbb\xbf",
    b'"a"',
    b'"a":1',
    b'"a": 1',
    b'"a" :1',
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"nan",
    b"1e400",
    b"12345678901234567890123",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"0.1",
    b"-0.0",
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b'"\\u00e9"',
    b'"\\""',
    b'"x\\\\"',
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"true",
    b"null",
    b'{"a":1,"a":2}',
    b'{"k":[' * 3,
    b"]}" * 3,
    b"\x00",
    b'{"src":"\xc3\xa9"}',
    b'{"x":NaN}',
    b"[" * 40,
]

random_bytes = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(b"".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=40).map(b"".join),
)

# Text that sometimes carries lone surrogates: json.dumps escapes them (\ud800) or, with
# ensure_ascii=False, the file gets their raw (invalid UTF-8) bytes.
json_text = st.text(alphabet=st.characters() | st.characters(categories=["Cs"]), max_size=12) | st.text(max_size=12)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**19, 23, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5e-05, 1e16, -0.0, 1.5e300, 5e-324, 23.0]),
    json_text,
)

json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4),
    max_leaves=20,
)


def same_json(left: Any, right: Any) -> bool:
    """Equal as JSON values, with types kept (1 is not 1.0, not True), NaN equal to NaN, -0.0 kept."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right and math.copysign(1.0, left) == math.copysign(1.0, right)
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_json(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same_json(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, dict):
        return any(has_surrogate(key) or has_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(has_surrogate(item) for item in value)
    return False


def read_all(path: Path, options: JsonlOptions) -> tuple[list[tuple[int, Any, bool, LineError | None]], JsonlReader]:
    reader = JsonlReader(path, path.name, options)
    return list(reader), reader


# --------------------------------------------------------------------------- JSONL reader


@FUZZ
@given(data=random_bytes, options=st.sampled_from([STRICT, PERMISSIVE, TINY_LINES]))
@example(data=b"", options=STRICT)
@example(data=b"\xef\xbb\xbf", options=PERMISSIVE)
@example(data=b'{"a":' + b"[" * 100_000 + b"\n", options=STRICT)
@example(data=b'{"a":' + b"9" * 5000 + b"}\n", options=STRICT)
@example(data=b'{"a":"\\ud800"}\n', options=STRICT)
@example(data=b"\r\n\r\n", options=PERMISSIVE)
def test_reader_on_random_bytes_succeeds_or_raises_a_typed_error(
    scratch: Path, data: bytes, options: JsonlOptions
) -> None:
    path = scratch / "random.jsonl"
    path.write_bytes(data)
    try:
        items, reader = read_all(path, options)
    except CorpusprovError as exc:
        failure: str | None = str(exc)
    else:
        failure = None
    if failure is not None:
        assert failure and "\n" not in failure, repr(failure)
        return
    for line_no, row, special, error in items:
        assert isinstance(line_no, int) and line_no >= 1
        if error is None:
            assert type(row) is dict
            assert isinstance(special, bool)
            # Whatever was read can be written back canonically.
            assert canonical_line(row, special=special).endswith(b"\n")
        else:
            assert isinstance(error, LineError)
            assert row is None
            if not is_blank(error):
                assert error.reason and str(error) and "\n" not in str(error), repr(str(error))
    # The bytes parsed are the bytes hashed.
    assert reader.digest.bytes == len(data)
    assert reader.digest.md5 == hashlib.md5(data).hexdigest()  # noqa: S324 -- DVC's content id


@FUZZ
@given(values=st.lists(json_values, min_size=1, max_size=6), ensure_ascii=st.booleans())
@example(values=[{"a": float("nan"), "b": [float("inf"), -float("inf")], "c": 2**70}], ensure_ascii=True)
@example(values=[{"a": "\ud800"}], ensure_ascii=True)
@example(values=[{"a": "\ud800"}], ensure_ascii=False)
@example(values=[[1, 2], "x", 3, None], ensure_ascii=False)
@example(values=[{"a": -0.0, "b": 23.0, "c": 23, "d": 5e-05, "e": "Café 東京"}], ensure_ascii=False)
def test_reader_round_trips_random_json_values(scratch: Path, values: list[Any], ensure_ascii: bool) -> None:
    path = scratch / "values.jsonl"
    lines = [json.dumps(value, ensure_ascii=ensure_ascii) for value in values]
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass"))
    try:
        items, _ = read_all(path, STRICT)
    except CorpusprovError as exc:  # pragma: no cover -- every file here is well-formed line by line
        pytest.fail(f"a whole-file error for well-formed lines: {exc}")
    assert [line_no for line_no, *_ in items] == list(range(1, len(values) + 1))
    for value, (line_no, row, special, error) in zip(values, items, strict=True):
        if type(value) is dict and not has_surrogate(value):
            assert error is None, f"line {line_no}: {error}"
            assert same_json(row, value), (row, value)
            # ... and the canonical bytes read back to the same value.
            written = canonical_line(row, special=special)
            assert same_json(json.loads(written), value)
        elif not has_surrogate(value):
            assert isinstance(error, LineError) and error.reason == "not_an_object", error
        else:
            # A lone surrogate is invalid UTF-8 raw, or cannot be written back escaped:
            # a typed line error either way, never a crash.
            assert isinstance(error, LineError), (row, value)


# --------------------------------------------------------------------------- params.yaml

MERGE_KEYS = [
    "required_keys",
    "dedup",
    "key",
    "keep",
    "non_finite",
    "on_invalid_row",
    "jsonl",
    "bom",
    "crlf",
    "blank_lines",
    "max_line_bytes",
]
AGGREGATE_KEYS = [
    "required_keys",
    "range_slack",
    "dedup",
    "key",
    "std_dev_units",
    "overrides",
    "non_finite",
    "on_invalid_row",
    "jsonl",
    "scales",
    "konvid-1k",
    "lsvq",
    "min",
    "max",
    "higher_is_better",
    "label",
    "citation",
    "licence",
    "data/raw/mos",
    "../x.jsonl",
    "/abs/x.jsonl",
]
CHOICES = [
    "first",
    "last",
    "keep",
    "null",
    "reject",
    "fail",
    "accept",
    "skip",
    "unified",
    "native",
    "mos",
    "src_sha256",
    "crf",
    "lsvq",
    "acr-1-5",
    "",
]

yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(CHOICES),
    st.text(max_size=10),
)


def yaml_tree(keys: list[str]) -> st.SearchStrategy[Any]:
    names = st.sampled_from(keys) | st.text(max_size=8)
    return st.recursive(
        yaml_scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=5),
        max_leaves=25,
    )


params_documents = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "merge": yaml_tree(MERGE_KEYS),
            "aggregate": yaml_tree(AGGREGATE_KEYS),
            "sample": yaml_tree(["seed", "rows"]),
        },
    ),
    st.dictionaries(st.text(max_size=8), yaml_tree(MERGE_KEYS), max_size=3),
    yaml_tree(MERGE_KEYS + AGGREGATE_KEYS),
)

TAGS = [
    "!!python/object/apply:os.system",
    "!!python/object/new:os.system",
    "!!python/name:os.system",
    "!!python/tuple",
    "!!binary",
    "!!set",
    "!!omap",
    "!!timestamp",
    "!custom",
    "!<tag:example.com,2000:x>",
    "!!str",
    "!!int",
    "!!float",
    "!!map",
    "!!seq",
]


def dump_yaml(document: Any) -> str:
    buffer = io.StringIO()
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = None
    yaml.dump(document, buffer)
    return buffer.getvalue()


@st.composite
def tagged_documents(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(TAGS))
    payload = draw(
        st.sampled_from(
            [
                "['touch PWNED']",
                "[touch PWNED]",
                "touch PWNED",
                "'1'",
                "1",
                "",
                "{a: 1}",
                "[1, 2]",
                "AAAA",
                "2001-12-14",
            ]
        )
    )
    place = draw(
        st.sampled_from(
            [
                "{tag} {payload}\n",
                "merge: {tag} {payload}\n",
                "merge:\n  keep: {tag} {payload}\n",
                "merge:\n  dedup:\n    keep: {tag} {payload}\n",
                "merge:\n  required_keys: [a, {tag} {payload}]\n",
                "aggregate:\n  overrides:\n    {tag} {payload}: lsvq\n",
                "aggregate:\n  range_slack: {tag} {payload}\n",
                "sample: {{seed: {tag} {payload}}}\n",
            ]
        )
    )
    return place.format(tag=tag, payload=payload)


def _check_params_text(scratch: Path, text: str | bytes) -> None:
    path = scratch / "params.yaml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(text)
    try:
        loaded = load_params(path, "params.yaml", required=True)
        merge_params(loaded)
        aggregate_params(loaded)
    except ParamsError as exc:
        message: str | None = str(exc)
    else:
        message = None
    if message is not None:
        assert message.startswith("params.yaml"), message
        assert "\n" not in message, f"a params error must be one line: {message!r}"
    assert not (scratch / "PWNED").exists()


@FUZZ
@given(
    text=st.text(max_size=300) | st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!?|>'\"#%@` \n\t,0.")), max_size=200)
)
@example(text="merge:\n  required_keys: &a [*a]\n")
@example(text="merge: &a\n  jsonl: *a\n")
@example(text="- a\n- b\n")
@example(text="merge: [1, 2]\n")
@example(text="{a: 1, a: 2}\n")
@example(text="merge:\n  keep: first\n  keep: last\n")
@example(text="? [a, b]\n: 1\n")
@example(text="merge:\n  <<: {keep: last}\n")
@example(text="%YAML 1.1\n---\nmerge: {}\n")
@example(text="--- a\n--- b\n")
@example(text="merge:\n\tkeep: first\n")
def test_params_loader_on_random_text(scratch: Path, text: str) -> None:
    _check_params_text(scratch, text)


@FUZZ
@given(document=params_documents)
def test_params_loader_on_random_structures(scratch: Path, document: Any) -> None:
    _check_params_text(scratch, dump_yaml(document))


@FUZZ
@given(text=tagged_documents())
@example(text="merge:\n  keep: !!python/object/apply:os.system ['touch PWNED']\n")
def test_params_loader_refuses_tags(scratch: Path, text: str) -> None:
    _check_params_text(scratch, text)


@pytest.mark.parametrize(
    "text",
    [
        "merge:\n  keep: !!python/object/apply:os.system ['touch PWNED']\n",
        "merge:\n  dedup:\n    keep: !!python/object/apply:os.system ['touch PWNED']\n",
        "aggregate:\n  range_slack: !!python/name:os.system\n",
    ],
)
def test_object_tags_are_a_params_error_with_position(scratch: Path, text: str) -> None:
    path = scratch / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParamsError) as caught:
        load_params(path, "params.yaml", required=True)
    assert "tag" in str(caught.value)
    assert caught.value.line is not None and caught.value.column is not None
    assert not (scratch / "PWNED").exists()


@pytest.mark.parametrize(
    "text",
    [
        "merge:\n  keep: !!float AAAA\n",
        "merge:\n  keep: !!int \n",
        "merge:\n  keep: !!int x\n",
        "merge:\n  keep: !!omap x\n",
        "merge:\n  keep: !!set x\n",
        "!!omap x\n",
        "merge:\n  keep: !!timestamp nope\n",
        "merge:\n  keep: !!binary ~~~\n",
    ],
    ids=["float", "int-empty", "int", "omap", "set", "omap-top", "timestamp", "binary"],
)
def test_builtin_tags_with_bad_payloads_are_params_errors(scratch: Path, cli_dir: Path, text: str) -> None:
    path = scratch / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParamsError):
        load_params(path, "params.yaml", required=True)
    # ... and through the CLI: exit 2 and one line naming the file, not "internal error" (70).
    (cli_dir / "in").mkdir(exist_ok=True)
    (cli_dir / "in" / "shard.jsonl").write_bytes(_valid_line(1) + b"\n")
    (cli_dir / "params-tagged.yaml").write_text(text, encoding="utf-8")
    shutil.rmtree(cli_dir / "out", ignore_errors=True)
    with _inside(cli_dir):
        result = CliRunner().invoke(
            app,
            ["merge", "in/shard.jsonl", "--output", "out/m.jsonl", "--params", "params-tagged.yaml"],
            catch_exceptions=False,
        )
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("corpusprov: error: params-tagged.yaml:"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (cli_dir / "out").exists()


@pytest.mark.parametrize(
    "text",
    [
        'merge:\n  "a\\nb": 1\n',
        'merge:\n  non_finite: "a\\nb"\n',
        'merge:\n  dedup:\n    key: ["x\\ny"]\n',
    ],
    ids=["key", "value", "dedup-field"],
)
def test_params_errors_stay_on_one_line_when_the_yaml_holds_newlines(scratch: Path, text: str) -> None:
    path = scratch / "params.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_params(path, "params.yaml", required=True)
    with pytest.raises(ParamsError) as caught:
        merge_params(loaded)
    assert "\n" not in str(caught.value), f"two-line message: {str(caught.value)!r}"


@FUZZ
@given(data=st.binary(max_size=300))
@example(data=b"\xff\xfe")
@example(data=b"\xef\xbb\xbfmerge: {}\n")
@example(data=b"merge:\x00\n")
def test_params_loader_on_random_bytes(scratch: Path, data: bytes) -> None:
    _check_params_text(scratch, data)


# --------------------------------------------------------------------------- the CLI


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def _valid_line(crf: int) -> bytes:
    return json.dumps(encode_row(crf=crf), ensure_ascii=False).encode("utf-8")


shard_lines = st.one_of(
    st.integers(min_value=0, max_value=6).map(_valid_line),
    st.integers(min_value=0, max_value=6).map(lambda crf: _valid_line(crf).replace(b'"crf"', b'"crF"')),
    st.integers(min_value=0, max_value=6).map(lambda crf: _valid_line(crf)[:-7]),
    random_bytes,
)
shards = st.lists(shard_lines, max_size=6).map(lambda lines: b"\n".join(lines)) | random_bytes

CLI_PARAMS = {
    "default": None,
    "reject": "merge:\n  on_invalid_row: reject\n  non_finite: reject\n",
    "lenient": "merge:\n  on_invalid_row: reject\n  jsonl: {bom: accept, crlf: accept, blank_lines: skip}\n",
}


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzzcli")
    for name, text in CLI_PARAMS.items():
        if text is not None:
            (folder / f"params-{name}.yaml").write_text(text, encoding="utf-8")
    return folder


@FUZZ
@given(data=shards, params=st.sampled_from(sorted(CLI_PARAMS)))
@example(data=_valid_line(1) + b"\n" + _valid_line(1) + b"\n", params="default")
@example(data=b"", params="default")
@example(data=b'{"a": NaN}\n', params="reject")
def test_cli_merge_on_random_shards(cli_dir: Path, data: bytes, params: str) -> None:
    runner = CliRunner()
    shutil.rmtree(cli_dir / "out", ignore_errors=True)
    (cli_dir / "in").mkdir(exist_ok=True)
    (cli_dir / "in" / "shard.jsonl").write_bytes(data)
    args = ["merge", "in/shard.jsonl", "--output", "out/m.jsonl"]
    if CLI_PARAMS[params] is not None:
        args += ["--params", f"params-{params}.yaml"]
    with _inside(cli_dir):
        result = runner.invoke(app, args, catch_exceptions=False)

    assert result.exit_code in (0, 1, 2), f"exit {result.exit_code}: {result.stderr}"
    out = cli_dir / "out"
    if result.exit_code == 0:
        corpus = (out / "m.jsonl").read_bytes()
        manifest, _ = load_manifest(out / "m.jsonl.manifest.json", "m.jsonl.manifest.json")
        assert accounting_problems(manifest) == []
        entry = manifest.output("corpus")
        assert entry is not None and entry.md5 == hashlib.md5(corpus).hexdigest()  # noqa: S324
        assert manifest.inputs[0].bytes == len(data)
        assert sorted(path.name for path in out.iterdir()) == ["m.jsonl", "m.jsonl.manifest.json", "m.rejects.jsonl"]
    else:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("corpusprov: error: "), result.stderr
        assert "in/shard.jsonl" in lines[0] or "params-" in lines[0], lines[0]
        assert not out.exists() or list(out.iterdir()) == [], sorted(out.iterdir())
