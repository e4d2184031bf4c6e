"""Natural-key semantics and the compact digest table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corpusprov.stages.keys import DigestSet, DigestTable, NonFiniteKeyError, key_digest

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


@given(st.lists(st.binary(min_size=16, max_size=16), max_size=3000))
def test_digest_table_behaves_like_a_dict(digests: list[bytes]) -> None:
    table = DigestTable(capacity=8)
    model: dict[bytes, int] = {}
    for index, digest in enumerate(digests):
        assert table.setdefault(digest, index) == model.get(digest)
        model.setdefault(digest, index)
    assert len(table) == len(model)
    for digest, value in model.items():
        assert table.get(digest) == value
    assert sorted(table.values()) == sorted(model.values())


def test_digest_table_stays_compact() -> None:
    table = DigestTable()
    for index in range(100_000):
        table.setdefault(index.to_bytes(16, "little"), index)
    assert table.nbytes() / len(table) <= 64


@given(st.lists(st.binary(min_size=16, max_size=16) | st.just(bytes(16)), max_size=3000))
def test_digest_set_behaves_like_a_set(digests: list[bytes]) -> None:
    compact = DigestSet()
    model: set[bytes] = set()
    for digest in digests:
        assert compact.add(digest) is (digest not in model)
        model.add(digest)
    assert len(compact) == len(model)
    assert all(digest in compact for digest in model)


def test_digest_set_stays_compact() -> None:
    import hashlib

    compact = DigestSet()
    for index in range(200_000):
        compact.add(hashlib.blake2b(index.to_bytes(8, "little"), digest_size=16).digest())
    assert len(compact) == 200_000
    assert compact.nbytes() / len(compact) <= 52
