"""Types of the aggregate's native per-corpus statistics (src/corpusprov/_aggregate.c); see stages.summary."""

from array import array
from collections.abc import Sequence

def group_stats(
    values: array[float], groups: array[int], group: int, count: int, mean: float, m2: float, edges: Sequence[float], /
) -> tuple[int, int, float, float, list[int]]: ...
def offer_block(
    index: dict[bytes, int],
    corpus_ids: dict[str, int],
    winner: array[int],
    std: array[float],
    corpus: array[int],
    unified: array[float],
    native: array[float],
    dropped: array[int],
    sort: list[bytes],
    rows: list[tuple[object, ...]],
    ordinal: int,
    /,
) -> tuple[int, int, list[int]]: ...
def sorted_ordinals(sort_keys: list[bytes], ordinals: array[int], /) -> bytes: ...
