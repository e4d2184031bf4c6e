"""The aggregate's per-corpus statistics and its resolver, fed a block at a time, give what one row at a time gives."""

from __future__ import annotations

import bisect
import math
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusprov.stages.resolver import NATIVE_OFFER_BLOCK, Resolver
from corpusprov.stages.summary import NATIVE_GROUP_STATS, UNIFIED_EDGES, AggregateSummary, group_stats_py
from tests.conftest import HAVE_C_COMPILER

RANGES = {"a": (1.0, 5.0), "b": (0.0, 100.0), "c": (0.0, 10.0)}

scores = st.one_of(
    st.floats(min_value=-10.0, max_value=110.0, allow_nan=False),
    st.sampled_from([0.0, 5.0, 100.0, 1.0, 10.0, 42.5]),  # bin edges, the top edges included
)
written = st.lists(st.tuples(st.sampled_from(sorted(RANGES)), scores, scores), max_size=60)


def one_at_a_time(rows: list[tuple[str, float, float]]) -> dict[str, tuple[object, ...]]:
    """Welford and bisect per value, in the order given: the arithmetic the summary must match."""
    state: dict[str, list[object]] = {}
    for corpus, unified, native in rows:
        low, high = RANGES[corpus]
        step = (high - low) / 10
        edges = (*(low + step * index for index in range(10)), high)
        entry = state.setdefault(corpus, [0, 0.0, 0.0, 0.0, 0.0, [0] * 22, [0] * (len(edges) + 1)])
        count = int(entry[0]) + 1  # type: ignore[call-overload]
        entry[0] = count
        for offset, value in ((1, unified), (3, native)):
            mean = float(entry[offset])  # type: ignore[arg-type]
            delta = value - mean
            mean += delta / count
            entry[offset] = mean
            entry[offset + 1] = float(entry[offset + 1]) + delta * (value - mean)  # type: ignore[arg-type]
        for bins, value, bounds in ((entry[5], unified, UNIFIED_EDGES), (entry[6], native, edges)):
            index = bisect.bisect_right(bounds, value)
            bins[index - 1 if value == bounds[-1] else index] += 1  # type: ignore[index]
    return {corpus: tuple(entry) for corpus, entry in state.items()}


@settings(max_examples=300, deadline=None)
@given(written)
def test_add_group_matches_one_value_at_a_time(rows: list[tuple[str, float, float]]) -> None:
    """The stage hands the summary every winner with a corpus id, a corpus at a time, the
    corpora in the order of their first row; the figures are Welford's and bisect's, per value."""
    by_id = {corpus: index for index, corpus in enumerate(sorted(RANGES))}
    summary = AggregateSummary(RANGES)
    unified = array("d", [u for _, u, _ in rows])
    native = array("d", [n for _, _, n in rows])
    groups = array("i", [by_id[corpus] for corpus, _, _ in rows])
    counts = {}
    for corpus in dict.fromkeys(corpus for corpus, _, _ in rows):
        counts[corpus] = summary.add_group(corpus, unified, native, groups, by_id[corpus])
    expected = one_at_a_time(rows)
    assert counts == {corpus: entry[0] for corpus, entry in expected.items()}
    assert list(summary.unified) == list(expected)  # the order mos_overall sums in
    for corpus, (count, mean, m2, native_mean, native_m2, unified_bins, native_bins) in expected.items():
        assert summary.unified[corpus].count == count
        assert summary.unified[corpus].mean == mean
        assert summary.unified[corpus].std == (math.sqrt(m2 / count) if count > 1 else 0.0)  # type: ignore[operator]
        assert summary.native[corpus].mean == native_mean
        assert summary.native[corpus].std == (math.sqrt(native_m2 / count) if count > 1 else 0.0)  # type: ignore[operator]
        assert summary.unified_bins[corpus] == unified_bins
        assert summary.native_bins[corpus] == native_bins
    if rows:
        total = sum(float(e[1]) * int(e[0]) for e in expected.values())  # type: ignore[call-overload, arg-type]
        overall = summary.mos_overall()
        assert overall is not None and math.isclose(overall, round(total / len(rows), 6), abs_tol=1e-6)


offered = st.lists(
    st.tuples(
        st.sampled_from([b"k1" * 8, b"k2" * 8, b"k3" * 8]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from([0.1, 0.5, 0.5, math.inf]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(offered, st.integers(min_value=1, max_value=7))
def test_offer_block_matches_offer(rows: list[tuple[bytes, str, float]], block: int) -> None:
    """Blocks of any size decide as single offers (``trace``'s path) do, and count the same."""
    single, blocked = Resolver(), Resolver()
    outcomes = [single.offer(digest, label, std, ordinal) for ordinal, (digest, label, std) in enumerate(rows)]
    same = lost = 0
    displaced: list[int] = []
    for start in range(0, len(rows), block):
        chunk = [(digest, label, std, b"", 0.0, 0.0, False) for digest, label, std in rows[start : start + block]]
        offers = blocked.offer_block(chunk, start)
        same += offers.same_corpus
        lost += offers.lost
        displaced += offers.displaced
    assert list(blocked.winner) == list(single.winner)
    assert same == sum(o.outcome == "same_corpus" for o in outcomes)
    assert lost == sum(o.outcome == "lost" for o in outcomes)
    assert displaced == [o.rival for o in outcomes if o.outcome == "won"]


def test_the_native_group_stats_were_built() -> None:
    """`pip install` builds corpusprov._aggregate wherever there is a C compiler (CI has one)."""
    if not HAVE_C_COMPILER:
        pytest.skip("no C compiler here: the pure-Python statistics are in use")
    assert NATIVE_GROUP_STATS


grouped = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2]),
        st.floats(allow_nan=True, allow_infinity=True) | scores | st.sampled_from([-0.0, 1e308, -1e308]),
    ),
    max_size=80,
)


@settings(max_examples=500, deadline=None)
@given(
    grouped,
    st.sampled_from([0, 1, 2, 7]),
    st.tuples(st.integers(0, 10), st.floats(-50, 50), st.floats(0, 1e4)),
    st.sampled_from([UNIFIED_EDGES, (1.0, 2.0, 5.0), (0.0,), (-1.0, 0.0, 0.0, 3.5)]),
)
def test_native_group_stats_agree_with_the_python_twin(
    rows: list[tuple[int, float]], group: int, state: tuple[int, float, float], edges: tuple[float, ...]
) -> None:
    if not NATIVE_GROUP_STATS:
        pytest.skip("the native statistics are not built here")
    from corpusprov._aggregate import group_stats

    values = array("d", [value for _, value in rows])
    groups = array("i", [held for held, _ in rows])
    expected = group_stats_py(values, groups, group, *state, edges)
    got = group_stats(values, groups, group, *state, edges)
    # repr: NaN is equal to itself here, and -0.0 is told from 0.0.
    assert repr(got) == repr(expected)


wide_offers = st.lists(
    st.tuples(
        st.sampled_from([b"k1" * 8, b"k2" * 8, b"k3" * 8, b"k4" * 8]),
        st.sampled_from(["a", "b", "c", "東京"]),
        st.sampled_from([0.1, 0.5, 0.5, math.inf, 0.0, -1.0, math.nan]),
        st.binary(max_size=6),
        st.floats(allow_nan=False),
        st.floats(allow_nan=False),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(wide_offers, st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=10))
def test_native_offer_block_agrees_with_the_python_rule(rows: list[tuple[Any, ...]], cuts: list[int]) -> None:
    """Block for block, the native step decides and stores what the Python rule does."""
    if not NATIVE_OFFER_BLOCK:
        pytest.skip("the native resolver step is not built here")
    native, python = Resolver(), Resolver()
    start = 0
    sizes = iter(cuts * (len(rows) + 1))
    while start < len(rows):
        block = rows[start : start + next(sizes)]
        assert native.offer_block(block, start) == python.offer_block_py(block, start)
        start += len(block)
    for name in ("winner", "winner_corpus", "winner_dropped", "winner_sort", "corpus_ids", "index"):
        assert getattr(native, name) == getattr(python, name), name
    for name in ("winner_std", "winner_unified", "winner_native"):
        assert repr(getattr(native, name)) == repr(getattr(python, name)), name


def test_the_native_resolver_step_was_built() -> None:
    """`pip install` builds corpusprov._aggregate wherever there is a C compiler (CI has one)."""
    if not HAVE_C_COMPILER:
        pytest.skip("no C compiler here: the Python rule is in use")
    assert NATIVE_OFFER_BLOCK
