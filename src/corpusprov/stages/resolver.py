"""The aggregate dedup rule, written once: the stage and ``trace`` both drive :class:`Resolver`."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple

from corpusprov.stages.mosrow import UNKNOWN_STD

__all__ = ["NATIVE_OFFER_BLOCK", "OFFERED_ROW", "BlockOffers", "Offer", "Resolver"]

#: The fields of a row offered to :meth:`Resolver.offer_block`, in order: a plain tuple per
#: row, as the aggregate workers build it (the digest first, as every stage's rows).
OFFERED_ROW: Final = ("digest", "label", "std", "sort_key", "unified", "native", "dropped")


_offer_block: Callable[..., tuple[int, int, list[int]]] | None
try:
    from corpusprov._aggregate import offer_block as _offer_block

    #: True when blocks are offered natively (``_aggregate.offer_block``).
    NATIVE_OFFER_BLOCK: Final = True
except ImportError:  # pragma: no cover - an install without a C compiler
    _offer_block = None
    NATIVE_OFFER_BLOCK: Final = False  # type: ignore[misc]


class Offer(NamedTuple):
    """What the resolver decided about one offered row."""

    outcome: str
    """``new`` (first of its key), ``won`` (displaced the winner), ``lost`` (cross-corpus, kept
    the winner) or ``same_corpus`` (dropped: same corpus as the winner)."""
    rival: int
    """Ordinal of the winner it was compared with (``-1`` for ``new``)."""
    rival_std: float
    """That winner's std-dev as compared (``inf`` when unknown)."""


class BlockOffers(NamedTuple):
    """What became of a block of offered rows, as counts."""

    same_corpus: int
    """Rows dropped as same-corpus duplicates of the winner."""
    lost: int
    """Rows that lost to the winner (cross-corpus duplicates)."""
    displaced: list[int]
    """Ordinals of the winners that offered rows displaced (each now a cross-corpus duplicate)."""


class Resolver:
    """The aggregate dedup rule, once: the stage and ``trace`` both drive it.

    Per unique key it keeps the current winner (ordinal, std-dev, corpus, scores, sort key).
    A row offered in input order is compared with the *current* winner only: the same
    resolved corpus drops it; another corpus makes it a cross-corpus duplicate, and the
    smaller std-dev wins (ties keep the winner), as ``aggregate_corpora.py`` decides.

    The key index is a ``dict`` (about 100 bytes a key; the aggregate has no per-key memory
    target, and a C-level lookup is what keeps the main process from being the bottleneck).
    """

    def __init__(self) -> None:
        self.index: dict[bytes, int] = {}
        self.winner = array("q")
        self.winner_std = array("d")
        self.winner_corpus = array("i")
        self.winner_unified = array("d")
        self.winner_native = array("d")
        self.winner_dropped = array("b")
        self.winner_sort: list[bytes] = []
        self.corpus_ids: dict[str, int] = {}

    def offer_block(self, rows: Iterable[tuple[Any, ...]], ordinal: int) -> BlockOffers:
        """Offer usable rows (:data:`OFFERED_ROW` tuples) numbered from ``ordinal``, in input order.

        Natively (``_aggregate.offer_block``) where the install built it, for a list of rows:
        the same decisions and state as :meth:`offer_block_py`, its reference (property-tested).
        """
        if _offer_block is None or type(rows) is not list:
            return self.offer_block_py(rows, ordinal)
        same, lost, displaced = _offer_block(
            self.index,
            self.corpus_ids,
            self.winner,
            self.winner_std,
            self.winner_corpus,
            self.winner_unified,
            self.winner_native,
            self.winner_dropped,
            self.winner_sort,
            rows,
            ordinal,
        )
        return BlockOffers(same, lost, displaced)

    def offer_block_py(self, rows: Iterable[tuple[Any, ...]], ordinal: int) -> BlockOffers:
        """:meth:`offer_block` in Python: the rule as written, and the native step's reference."""
        index = self.index
        corpus_ids = self.corpus_ids
        winner = self.winner
        winner_std = self.winner_std
        winner_corpus = self.winner_corpus
        winner_unified = self.winner_unified
        winner_native = self.winner_native
        winner_dropped = self.winner_dropped
        winner_sort = self.winner_sort
        same = lost = 0
        displaced: list[int] = []
        for digest, label, std, sort_key, unified, native, dropped in rows:
            corpus = corpus_ids.get(label)
            if corpus is None:
                corpus = corpus_ids[label] = len(corpus_ids)
            new_slot = len(winner)
            slot = index.setdefault(digest, new_slot)
            if slot == new_slot:
                winner.append(ordinal)
                winner_std.append(std)
                winner_corpus.append(corpus)
                winner_unified.append(unified)
                winner_native.append(native)
                winner_dropped.append(dropped)
                winner_sort.append(sort_key)
            elif winner_corpus[slot] == corpus:
                same += 1
            elif std < winner_std[slot]:
                displaced.append(winner[slot])
                winner[slot] = ordinal
                winner_std[slot] = std
                winner_corpus[slot] = corpus
                winner_unified[slot] = unified
                winner_native[slot] = native
                winner_dropped[slot] = dropped
                winner_sort[slot] = sort_key
            else:
                lost += 1
            ordinal += 1
        return BlockOffers(same, lost, displaced)

    def offer(
        self,
        digest: bytes,
        label: str,
        std: float,
        ordinal: int,
        sort_key: bytes = b"",
        unified: float = 0.0,
        native: float = 0.0,
        dropped: bool = False,
    ) -> Offer:
        """Offer one usable row; the decision says what became of it (and of the winner)."""
        slot = self.index.get(digest)
        if slot is None:
            rival, rival_std = -1, UNKNOWN_STD
        else:
            rival, rival_std = self.winner[slot], self.winner_std[slot]
        offers = self.offer_block([(digest, label, std, sort_key, unified, native, dropped)], ordinal)
        if offers.same_corpus:
            return Offer("same_corpus", rival, rival_std)
        if offers.lost:
            return Offer("lost", rival, rival_std)
        if offers.displaced:
            return Offer("won", rival, rival_std)
        return Offer("new", -1, UNKNOWN_STD)

    def labels(self) -> list[str]:
        """Corpus label by id."""
        return sorted(self.corpus_ids, key=self.corpus_ids.__getitem__)
