"""The aggregate dedup rule, written once: the stage and ``trace`` both drive :class:`Resolver`."""

from __future__ import annotations

from array import array
from typing import NamedTuple

from corpusprov.stages.keys import DigestTable
from corpusprov.stages.mosrow import UNKNOWN_STD

__all__ = ["Offer", "Resolver"]


class Offer(NamedTuple):
    """What the resolver decided about one offered row."""

    outcome: str
    """``new`` (first of its key), ``won`` (displaced the winner), ``lost`` (cross-corpus, kept
    the winner) or ``same_corpus`` (dropped: same corpus as the winner)."""
    rival: int
    """Ordinal of the winner it was compared with (``-1`` for ``new``)."""
    rival_std: float
    """That winner's std-dev as compared (``inf`` when unknown)."""


class Resolver:
    """The aggregate dedup rule, once: the stage and ``trace`` both drive it.

    Per unique key it keeps the current winner (ordinal, std-dev, corpus, scores, sort key).
    A row offered in input order is compared with the *current* winner only: the same
    resolved corpus drops it; another corpus makes it a cross-corpus duplicate, and the
    smaller std-dev wins (ties keep the winner), as ``aggregate_corpora.py`` decides.
    """

    def __init__(self) -> None:
        self.table = DigestTable()
        self.winner = array("q")
        self.winner_std = array("d")
        self.winner_corpus = array("i")
        self.winner_unified = array("d")
        self.winner_native = array("d")
        self.winner_dropped = array("b")
        self.winner_sort: list[bytes] = []
        self.corpus_ids: dict[str, int] = {}

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
        """Offer a usable row; the decision says what became of it (and of the winner)."""
        corpus = self.corpus_ids.setdefault(label, len(self.corpus_ids))
        slot = self.table.setdefault(digest, len(self.winner))
        if slot is None:
            self.winner.append(ordinal)
            self.winner_std.append(std)
            self.winner_corpus.append(corpus)
            self.winner_unified.append(unified)
            self.winner_native.append(native)
            self.winner_dropped.append(dropped)
            self.winner_sort.append(sort_key)
            return Offer("new", -1, UNKNOWN_STD)
        rival, rival_std = self.winner[slot], self.winner_std[slot]
        if self.winner_corpus[slot] == corpus:
            return Offer("same_corpus", rival, rival_std)
        if std < rival_std:
            self.winner[slot] = ordinal
            self.winner_std[slot] = std
            self.winner_corpus[slot] = corpus
            self.winner_unified[slot] = unified
            self.winner_native[slot] = native
            self.winner_dropped[slot] = dropped
            self.winner_sort[slot] = sort_key
            return Offer("won", rival, rival_std)
        return Offer("lost", rival, rival_std)

    def labels(self) -> list[str]:
        """Corpus label by id."""
        return sorted(self.corpus_ids, key=self.corpus_ids.__getitem__)
