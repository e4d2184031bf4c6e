"""The native transcoder (``_bytescan.canonical``, ``format_float``) writes orjson's bytes, or refuses.

And the native BLAKE2b the merge fast path digests keys and sources with is hashlib's.

The merge fast path writes a row's canonical line without orjson: its JSON reader, float
parser (Eisel-Lemire with strtod_l behind it) and float printer (Schubfach) are the ones in
``_canonical.h``. Every line it answers for must be byte for byte what the Python path
writes (``parse_row_written``), every float what ``orjson.dumps`` writes; what it cannot
vouch for it refuses, and the Python path answers.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.io.rowparse import parse_row_written
from tests.conftest import HAVE_C_COMPILER

try:
    from corpusprov._bytescan import blake2b16, canonical, format_float
except ImportError:  # no C compiler where this was installed: the Python path is in use
    if HAVE_C_COMPILER:
        raise  # a machine with a compiler must have built it
    pytest.skip("the native extension is not built here", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent


def _orjson_line(raw: bytes) -> bytes | None:
    """The Python path's canonical line of ``raw``, or None where it rejects the line."""
    try:
        return parse_row_written(raw)[2]
    except Exception:
        return None


def _same_or_refused(raw: bytes) -> bytes | None:
    got = canonical(raw)
    if got is not None:
        assert got == _orjson_line(raw), raw
    return got


def _double(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


# ---- the float printer ----


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_prints_as_orjson_prints_it(value: float) -> None:
    assert format_float(value) == orjson.dumps(value)


def test_floats_at_the_edges_print_as_orjson_prints_them() -> None:
    """Subnormals (the shortest digits need the check Java's rendering skips), powers of two
    and ten, the thresholds of the positional layout, and random bit patterns."""
    rng = random.Random(11)
    values = [_double(t) for t in range(1, 5000)]  # the smallest subnormals
    values += [_double(rng.getrandbits(52)) for _ in range(5000)]  # subnormals
    values += [2.0**e for e in range(-1074, 1024)] + [10.0**e for e in range(-323, 309)]
    values += [1e-5, 9.999999999999999e-06, 1e-6, 1e15, 9999999999999998.0, 1e16, 1.7976931348623157e308]
    values += [_double(rng.getrandbits(63)) for _ in range(50000)]
    values = [v for v in values if math.isfinite(v)]
    values += [-v for v in values]
    wrong = [(v, format_float(v), orjson.dumps(v)) for v in values if format_float(v) != orjson.dumps(v)]
    assert wrong == []


def test_the_printers_table_is_what_its_generator_computes() -> None:
    """``_pow10.h`` is generated; a hand edit (or a stale copy) fails here."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_pow10.py"), "--check"], check=False)
    assert done.returncode == 0, "src/corpusprov/_pow10.h differs from scripts/gen_pow10.py's output"


# ---- the float parser ----

_DIGITS = st.text("0123456789", min_size=1, max_size=25)


@st.composite
def _number_tokens(draw: st.DrawFn) -> str:
    """JSON number tokens of every shape: long mantissas, halfway cases, huge and tiny exponents."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
    if kind == 1:  # a double's exact value cut somewhere: near-halfway digit strings
        value = draw(st.floats(allow_nan=False, allow_infinity=False, min_value=0.0))
        return f"{value:.{draw(st.integers(15, 40))}e}"
    if kind == 2:  # exactly halfway between two doubles: ties to even (strtod answers)
        bits = draw(st.integers(1, 2**62))
        low, high = _double(bits), _double(bits + 1)
        if not math.isfinite(high):
            return "1.5"
        from decimal import Decimal

        return format((Decimal(low) + Decimal(high)) / 2, "f")
    whole = draw(_DIGITS).lstrip("0") or "0"
    fraction = draw(st.none() | _DIGITS)
    exponent = draw(st.none() | st.integers(-400, 400))
    token = whole + ("" if fraction is None else "." + fraction) + ("" if exponent is None else f"e{exponent}")
    if whole == "0" and fraction is None and exponent is None:
        token = "0.0"  # noqa: S105 (a number, not a password)
    return ("-" if draw(st.booleans()) else "") + token


@settings(max_examples=3000, deadline=None)
@given(_number_tokens())
def test_a_number_token_reads_as_orjson_reads_it(token: str) -> None:
    raw = b'{"a": ' + token.encode() + b"}"
    got = _same_or_refused(raw)
    if got is None:
        # It refuses only a number beyond a double (the careful path writes Infinity), an
        # integer of 19+ digits (which may leave 64 bits) and -0 (orjson's int 0).
        integer = "." not in token and "e" not in token
        assert math.isinf(float(token)) or (integer and (len(token.lstrip("-")) > 18 or token == "-0"))  # noqa: S105


def test_real_looking_float_tokens_are_never_refused() -> None:
    rng = random.Random(5)
    tokens = [repr(rng.random() * 10.0 ** rng.randint(-9, 9)) for _ in range(20000)]
    raws = [b'{"a": ' + token.encode() + b"}" for token in tokens]
    assert all(_same_or_refused(raw) is not None for raw in raws)


# ---- whole lines ----

_TEXT = st.text(st.characters(codec="utf-8"), max_size=8) | st.sampled_from(
    ['q"uote', "back\\slash", "東京", "\ud83d\ude00", "\x00\x1f\x7f", "\u2028", "/", "tab\there"]
)
_SCALAR = (
    st.integers(-(10**18), 10**18)
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
    | st.booleans()
    | st.none()
)
_VALUE = st.recursive(
    _SCALAR,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b"]), children, max_size=2)
    ),
    max_leaves=5,
)
_KEYS = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(["adm2_mean", "crf", "é", "a b", 'k"'])


@st.composite
def _raw_lines(draw: st.DrawFn) -> tuple[bytes, dict[str, Any], bool]:
    row = draw(st.dictionaries(_KEYS, _VALUE, max_size=8))
    separators = draw(st.sampled_from([(", ", ": "), (",", ":"), (" , ", " : "), (",\t", ":\t")]))
    ascii_only = draw(st.booleans())
    text = json.dumps(row, sort_keys=draw(st.booleans()), separators=separators, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass"), row, ascii_only


def _supported(value: Any, top: bool = True) -> bool:
    """What the transcoder promises to answer for (the rest it may refuse)."""
    kind = type(value)
    if kind is float:
        return bool(math.isfinite(value) or (top and math.isnan(value)))
    if kind is int:
        return bool(-(10**18) < value < 10**18)
    if kind is list:
        return all(_supported(item, top=False) for item in value)
    if kind is str:
        return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)  # a lone surrogate (or a pair, raw)
    return bool(kind is bool or value is None)


@settings(max_examples=3000, deadline=None)
@given(_raw_lines())
def test_a_line_comes_out_as_orjson_writes_it(line: tuple[bytes, dict[str, Any], bool]) -> None:
    """It answers for every line of the JSON it supports (keys without escapes; strings,
    numbers, literals, arrays of those, a top-level NaN), as orjson writes it."""
    raw, row, ascii_only = line
    got = _same_or_refused(raw)
    plain_keys = all("\\" not in json.dumps(key, ensure_ascii=ascii_only) for key in row)
    if plain_keys and all(_supported(value) for value in row.values()):
        assert got is not None, raw


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1,}',
        b'{"a": 01}',
        b'{"a": -0}',
        b'{"a": 1.}',
        b'{"a": .5}',
        b'{"a": 1e}',
        b'{"a": +1}',
        b'{"a": 1e400}',
        b'{"a": -1e400}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": nan}',
        b'{"a": [NaN]}',
        b'{"a": {"b": 1}}',
        b'{"a": "\\ud800"}',
        b'{"a": "\\udc00\\ud800"}',
        b'{"a": "\\ud800\\u0041"}',
        b'{"a": "\\x"}',
        b'{"a": "\xff"}',
        b'{"a": "\xed\xa0\x80"}',
        b'{"a": "\xc0\x80"}',
        b'{"a": "\xf4\x90\x80\x80"}',
        b'{"a": "raw\ttab"}',
        b'{"a\\n": 1}',
        b'{"a": 1, "a": 2}',
        b'{"b": 1, "a": 2, "b": 3}',
        b'{"a": 1} ',
        b'{"a": 1}x',
        b'{"a": 1}{"b": 2}',
        b' {"a": 1}',
        b'{"a":\r1}',
        b'{"a": 1',
        b'{"a": "open}',
        b'{"a": 12345678901234567890}',
        b'{"a": tru}',
        b'["a"]',
        b"",
    ],
)
def test_what_needs_the_python_path_is_refused(raw: bytes) -> None:
    assert canonical(raw) is None


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (b"{}", b"{}\n"),
        (b'{"b": 2, "a": 1}', b'{"a":1,"b":2}\n'),
        (b'{"a" : [ ] , "b":[1, [2, "x"]]}', b'{"a":[],"b":[1,[2,"x"]]}\n'),
        (
            b'{"s": "\\u6771\\u4eac \\/ \\" \\\\ \\n \\u0001 \\ud83d\\ude00"}',
            '{"s":"東京 / \\" \\\\ \\n \\u0001 😀"}\n'.encode(),
        ),
        (b'{"x": NaN, "y": 1E5, "z": -0.0, "w": 5e-05}', b'{"w":0.00005,"x":NaN,"y":100000.0,"z":-0.0}\n'),
        (
            b'{"big": 999999999999999999, "small": -999999999999999999}',
            b'{"big":999999999999999999,"small":-999999999999999999}\n',
        ),
    ],
)
def test_what_it_answers_is_the_canonical_line(raw: bytes, line: bytes) -> None:
    assert canonical(raw) == line
    if b"NaN" not in raw:
        assert orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE) == line


# ---- the digests ----


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=600), st.binary(max_size=16))
def test_the_native_blake2b_is_hashlibs(data: bytes, person: bytes) -> None:
    """Every length around the 128-byte block (0, 127, 128, 129, ...) and any personalisation."""
    assert blake2b16(data, person) == hashlib.blake2b(data, digest_size=16, person=person).digest()


@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 255, 256, 257, 1024])
def test_the_native_blake2b_is_hashlibs_at_block_edges(size: int) -> None:
    data = bytes(range(256)) * 5
    assert (
        blake2b16(data[:size], b"corpusprov-k1")
        == hashlib.blake2b(data[:size], digest_size=16, person=b"corpusprov-k1").digest()
    )
