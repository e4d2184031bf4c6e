"""Natural-key semantics and the compact digest table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corpusprov.stages.keys import (
    NATIVE_DIGESTS,
    DigestSet,
    DigestTable,
    NonFiniteKeyError,
    PyDigestSet,
    PyDigestTable,
    key_digest,
)
from tests.conftest import HAVE_C_COMPILER

FIELDS = ("src_sha256", "encoder", "preset", "crf")


def _key(**values: object) -> bytes:
    row = {"src_sha256": "a" * 64, "encoder": "libx264", "preset": "medium", "crf": 23}
    row.update(values)
    return key_digest(row, FIELDS)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"crf": 23}, {"crf": 23.0}),
        ({"preset": 6}, {"preset": 6.0}),
        ({"crf": 2**64}, {"crf": float(2**64)}),
        ({"crf": 0}, {"crf": -0.0}),
    ],
)
def test_numbers_compare_by_value(left: dict[str, object], right: dict[str, object]) -> None:
    assert _key(**left) == _key(**right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"crf": 23}, {"crf": "23"}),
        ({"crf": 23.5}, {"crf": "23.5"}),
        ({"crf": 1}, {"crf": True}),
        ({"crf": 0}, {"crf": False}),
        ({"crf": 0}, {"crf": None}),
        ({"preset": "medium"}, {"preset": "Medium"}),
        ({"preset": "medium"}, {"preset": "medium "}),
        ({"crf": 23.5}, {"crf": 23.50000001}),
    ],
)
def test_distinct_values_give_distinct_keys(left: dict[str, object], right: dict[str, object]) -> None:
    assert _key(**left) != _key(**right)


def test_field_boundaries_are_unambiguous() -> None:
    assert key_digest({"a": "xy", "b": "z"}, ("a", "b")) != key_digest({"a": "x", "b": "yz"}, ("a", "b"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_key_names_the_field(value: float) -> None:
    with pytest.raises(NonFiniteKeyError) as caught:
        _key(crf=value)
    assert caught.value.field_name == "crf"


# The native tables (src/corpusprov/_digests.c) and the pure-Python reference must behave
# alike: each is checked against a dict or set, on the same inputs.
TABLES = pytest.mark.parametrize("table_type", [DigestTable, PyDigestTable], ids=["native", "python"])
SETS = pytest.mark.parametrize("set_type", [DigestSet, PyDigestSet], ids=["native", "python"])

_DIGESTS = st.lists(st.binary(min_size=16, max_size=16) | st.just(bytes(16)) | st.just(b"\x01" * 16), max_size=3000)


def test_the_native_tables_were_built() -> None:
    """`pip install` builds corpusprov._digests wherever there is a C compiler (CI has one)."""
    if not HAVE_C_COMPILER:
        pytest.skip("no C compiler here: the pure-Python tables are in use")
    assert NATIVE_DIGESTS
    assert DigestSet.__module__ == DigestTable.__module__ == "corpusprov._digests"


@TABLES
@given(digests=_DIGESTS, values=st.data())
def test_digest_table_behaves_like_a_dict(
    table_type: type[PyDigestTable], digests: list[bytes], values: st.DataObject
) -> None:
    table = table_type(capacity=8)
    model: dict[bytes, int] = {}
    for index, digest in enumerate(digests):
        if values.draw(st.booleans()):
            assert table.setdefault(digest, index) == model.get(digest)
            model.setdefault(digest, index)
        else:
            assert table.set(digest, index) == model.get(digest)
            model[digest] = index
        assert table.get(digest) == model[digest]
    assert len(table) == len(model)
    for digest, value in model.items():
        assert table.get(digest) == value
    assert table.get(b"\xff" * 16) == model.get(b"\xff" * 16)
    assert sorted(table.values()) == sorted(model.values())


@TABLES
def test_digest_table_stays_compact(table_type: type[PyDigestTable]) -> None:
    table = table_type()
    for index in range(100_000):
        table.setdefault(index.to_bytes(16, "little"), index)
    assert len(table) == 100_000
    assert table.nbytes() / len(table) <= 64


@TABLES
def test_digest_table_refuses_what_it_cannot_hold(table_type: type[PyDigestTable]) -> None:
    table = table_type()
    with pytest.raises(ValueError, match="non-negative"):
        table.set(b"k" * 16, -1)
    assert len(table) == 0


def test_native_tables_refuse_a_digest_of_the_wrong_size() -> None:
    if not NATIVE_DIGESTS:
        pytest.skip("the native tables are not built here")
    with pytest.raises(TypeError, match="16 bytes"):
        DigestSet().add(b"short")
    with pytest.raises(TypeError, match="16 bytes"):
        DigestTable().get(b"x" * 17)
    assert b"short" not in DigestSet()


@SETS
@given(digests=_DIGESTS)
def test_digest_set_behaves_like_a_set(set_type: type[PyDigestSet], digests: list[bytes]) -> None:
    compact = set_type()
    model: set[bytes] = set()
    for digest in digests:
        assert compact.add(digest) is (digest not in model)
        model.add(digest)
        assert digest in compact
    assert len(compact) == len(model)
    assert all(digest in compact for digest in model)
    assert (b"\xfe" * 16 in compact) is (b"\xfe" * 16 in model)


@SETS
def test_digest_set_stays_compact(set_type: type[PyDigestSet]) -> None:
    import hashlib

    compact = set_type()
    for index in range(200_000):
        compact.add(hashlib.blake2b(index.to_bytes(8, "little"), digest_size=16).digest())
    assert len(compact) == 200_000
    assert compact.nbytes() / len(compact) <= 52
