"""MOS corpus sample rows: five corpora with cross-corpus repeats and planted reject rows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from corpusprov.errors import UsageError
from corpusprov.params.defaults import MOS_OPTIONAL_KEYS, MOS_REQUIRED_KEYS
from corpusprov.sample._common import ENCODER, NAN, JsonRow, iso_utc, padding_fields, sha256_of, spread_positions

__all__ = ["MIN_MOS_ROWS", "MOS_CORPORA", "iter_mos_lines", "iter_mos_rows", "mos_file_sizes"]

#: Fewer MOS rows than this cannot carry every quirk (4 rows per corpus file).
MIN_MOS_ROWS = 20


@dataclass(frozen=True)
class _Corpus:
    label: str
    low: float
    high: float
    higher_is_better: bool
    weight: float
    decimals: int
    std_range: tuple[float, float]
    ratings: tuple[int, int]
    version: str
    ingest_epoch: int
    bad_mos: tuple[float, ...]


_CORPORA = (
    _Corpus("konvid-1k", 1.0, 5.0, True, 0.15, 4, (0.35, 0.95), (100, 130), "1.0",
            1_672_531_200, (6.2, 5.4, 0.3)),
    _Corpus("lsvq", 1.0, 5.0, True, 0.35, 4, (0.4, 1.1), (30, 40), "2021.1",
            1_675_209_600, (6.2, 0.0)),
    _Corpus("youtube-ugc", 1.0, 5.0, True, 0.2, 3, (0.3, 0.9), (80, 140), "2019",
            1_677_628_800, (6.2, 5.3)),
    _Corpus("waterloo-ivc-4k", 0.0, 100.0, True, 0.1, 2, (8.0, 18.0), (28, 32), "2019.2",
            1_680_307_200, (104.5, -3.2)),
    _Corpus("live-vqa", 0.0, 100.0, False, 0.2, 2, (5.0, 15.0), (29, 38), "2010",
            1_682_899_200, (113.0, -7.5)),
)  # fmt: skip
#: The MOS corpus labels, one file each, in generation order.
MOS_CORPORA: tuple[str, ...] = tuple(corpus.label for corpus in _CORPORA)
_MOS_KEYS = frozenset(MOS_REQUIRED_KEYS + MOS_OPTIONAL_KEYS)
_UPSTREAM_ENCODERS = ("h264", "vp9", "hevc", "av1")
_NON_ASCII_STEMS = ("Café_ñandú", "東京_夜景", "Zürich_Straßenbahn", "Москва_метро", "서울_야경")
_UGC_CATEGORIES = ("Gaming", "Vlog", "Sports", "Animation", "Lecture", "MusicVideo", "NewsClip")
_LIVE_CONTENTS = ("pa", "rb", "rh", "tr", "st", "sf", "bs", "sh", "mc", "pr")
_WATERLOO_CONTENTS = ("Animal", "Bund", "Crowd", "Fountain", "Harbour", "Lake", "Runners")


@dataclass(frozen=True, slots=True)
class _Video:
    src: str
    sha256: str
    quality: float
    std_dev: float | None
    width: int
    height: int
    framerate: float
    duration_s: float
    size_bytes: int


def mos_file_sizes(total: int) -> list[int]:
    """How many of ``total`` MOS rows go to each corpus file, in ``MOS_CORPORA`` order."""
    floor = MIN_MOS_ROWS // len(_CORPORA)
    spare = total - floor * len(_CORPORA)
    sizes = [floor + int(spare * corpus.weight) for corpus in _CORPORA]
    sizes[1] += total - sum(sizes)  # the rounding remainder goes to the biggest corpus
    return sizes


def _mos_src_name(rng: random.Random, label: str, index: int, stem: str | None) -> str:
    tag = f"_{stem}" if stem else ""
    if label == "konvid-1k":
        return f"{3_000_000_000 + index * 7919 + rng.randrange(7919)}{tag}.mp4"
    if label == "lsvq":
        return f"{rng.choice(('ia', 'yfcc'))}-batch{rng.randint(1, 4)}/{index:06d}{tag}.mp4"
    if label == "youtube-ugc":
        resolution = rng.choice(("360", "480", "720", "1080", "2160"))
        return f"{rng.choice(_UGC_CATEGORIES)}_{resolution}P-{index:04x}{tag}.mkv"
    if label == "waterloo-ivc-4k":
        content = rng.choice(_WATERLOO_CONTENTS)
        return f"{content}_{rng.choice(('h264', 'hevc', 'vp9'))}_{index:04d}{tag}.mp4"
    return f"{rng.choice(_LIVE_CONTENTS)}{index}{tag}_25fps.yuv"


def _new_video(rng: random.Random, corpus: _Corpus, index: int, stem: str | None) -> _Video:
    src = _mos_src_name(rng, corpus.label, index, stem)
    if corpus.label == "waterloo-ivc-4k":
        width, height = 3840, 2160
    else:
        width, height = rng.choice(((960, 540), (1280, 720), (1920, 1080), (640, 360)))
    framerate = rng.choice((23.976, 24.0, 25.0, 29.97, 30.0))
    duration = round(rng.uniform(5.0, 12.0), 3)
    return _Video(
        src,
        sha256_of(src),
        rng.random(),
        _std_dev(rng, corpus),
        width,
        height,
        framerate,
        duration,
        int(width * height * duration * rng.uniform(0.05, 0.4)),
    )


def _std_dev(rng: random.Random, corpus: _Corpus) -> float | None:
    draw = rng.random()
    if draw < 0.06:
        return None  # not published for this row
    if draw < 0.09:
        return 0.0  # published as 0: unknown, not perfect agreement
    return round(rng.uniform(*corpus.std_range), 4)


def _mos_value(rng: random.Random, corpus: _Corpus, quality: float) -> float:
    span = corpus.high - corpus.low
    level = 0.1 + 0.8 * quality if corpus.higher_is_better else 0.85 - 0.65 * quality
    value = corpus.low + span * (level + 0.06 * (rng.random() - 0.5))
    return round(min(corpus.high, max(corpus.low, value)), corpus.decimals)


def _mos_row(
    rng: random.Random, corpus: _Corpus, video: _Video, *, mos: float, label: str, std_dev: float | None
) -> JsonRow:
    rand = rng.random
    # Keys go in in the order of MOS_REQUIRED_KEYS + MOS_OPTIONAL_KEYS.
    row: JsonRow = {
        "src": video.src,
        "src_sha256": video.sha256,
        "mos": mos,
        "corpus": label,
        "src_size_bytes": video.size_bytes,
        "width": video.width,
        "height": video.height,
        "framerate": video.framerate,
        "duration_s": video.duration_s,
        "pix_fmt": "yuv420p",
    }
    if rand() < 0.4:
        row["encoder_upstream"] = _UPSTREAM_ENCODERS[int(rand() * len(_UPSTREAM_ENCODERS))]
    if std_dev is not None:
        row["mos_std_dev"] = std_dev
    low, high = corpus.ratings
    row["n_ratings"] = low + int(rand() * (high - low + 1))
    row["corpus_version"] = corpus.version
    row["ingested_at_utc"] = iso_utc(corpus.ingest_epoch + int(rand() * 86_400 * 90))
    return row


def _check_mos_keys(row: JsonRow) -> None:
    missing = [key for key in MOS_REQUIRED_KEYS if key not in row]
    unknown = [key for key in row if key not in _MOS_KEYS and not key.startswith("x_pad_")]
    if missing or unknown:  # only if defaults.py changes under this generator
        raise RuntimeError(f"sample MOS rows lack {missing} or carry unknown {unknown}")


def iter_mos_rows(rng: random.Random, n: int, *, extra_width: int = 0) -> Iterator[JsonRow]:
    """Yield ``n`` MOS rows: the corpora of ``MOS_CORPORA``, one after the other.

    ~5% of sources reappear in a later corpus (same sha, other ``mos_std_dev``), a few
    repeat within a corpus, and a few rows are meant to be rejected (unknown label
    ``lsvq-beta``, out-of-range MOS, NaN MOS); ~1% per corpus lie 0.1-0.45 past the range,
    rejected by the default slack and admitted by a slack of 0.5. ``extra_width`` pads each row by that many bytes.
    """
    if n < MIN_MOS_ROWS:
        raise UsageError(
            f"mos_rows must be at least {MIN_MOS_ROWS}, got {n}", fix=f"ask for {MIN_MOS_ROWS} or more MOS rows"
        )
    return _mos_rows(rng, n, padding_fields(extra_width))


def iter_mos_lines(rng: random.Random, n: int, *, extra_width: int = 0) -> Iterator[str]:
    """The rows of ``iter_mos_rows(rng, n)`` as ``json.dumps(row, ensure_ascii=False)`` text."""
    return map(ENCODER.encode, iter_mos_rows(rng, n, extra_width=extra_width))


def _mos_rows(rng: random.Random, n: int, padding: JsonRow) -> Iterator[JsonRow]:
    earlier: list[_Video] = []  # a sample of earlier corpora's sources, to reappear later
    first = True
    for file_index, (corpus, size) in enumerate(zip(_CORPORA, mos_file_sizes(n), strict=True)):
        counts = {
            "cross": max(1, round(size * 0.05)) if file_index else 0,
            "same": max(1 if file_index < 2 else 0, size // 400),
            "label": max(1, size // 1000) if corpus.label == "lsvq" else 0,
            "range": max(1 if file_index == 0 else 0, size // 1000) if file_index < 4 else 0,
            "nan": max(1 if file_index == 2 else 0, size // 1000) if file_index >= 2 else 0,
            # Just past the range, as an adapter's rounding leaves it: the default slack
            # rejects these, a wider one (the README's `wide-slack` experiment) admits them.
            "near": max(1 if size >= 10 else 0, size // 100),
        }
        plan = spread_positions(rng, size, counts)
        this_corpus: list[_Video] = []
        last_fresh: _Video | None = None
        for position in range(size):
            kind = plan.get(position)
            label = corpus.label
            if kind == "cross" and earlier:
                # Swap-pop: each earlier source reappears at most once.
                pick = rng.randrange(len(earlier))
                earlier[pick], earlier[-1] = earlier[-1], earlier[pick]
                video = earlier.pop()
                draw = rng.random()
                # Some ties with the earlier row's std-dev, some missing, most different.
                std_dev = video.std_dev if draw < 0.2 else None if draw < 0.3 else _std_dev(rng, corpus)
                row = _mos_row(
                    rng, corpus, video, mos=_mos_value(rng, corpus, video.quality), label=label, std_dev=std_dev
                )
            elif kind == "same" and last_fresh is not None:
                row = _mos_row(
                    rng,
                    corpus,
                    last_fresh,
                    mos=_mos_value(rng, corpus, last_fresh.quality),
                    label=label,
                    std_dev=_std_dev(rng, corpus),
                )
            else:
                stem = None
                if (file_index == 1 and position == 0) or rng.random() < 0.01:
                    stem = rng.choice(_NON_ASCII_STEMS)
                video = _new_video(rng, corpus, position, stem)
                mos = _mos_value(rng, corpus, video.quality)
                if kind == "label":
                    label = f"{corpus.label}-beta"
                elif kind == "range":
                    mos = rng.choice(corpus.bad_mos)
                elif kind == "nan":
                    mos = NAN
                elif kind == "near":
                    beyond = round(rng.uniform(0.1, 0.45), 2)
                    mos = corpus.high + beyond if rng.random() < 0.5 else corpus.low - beyond
                else:
                    last_fresh = video
                    if position == 0 or rng.random() < 0.25:
                        this_corpus.append(video)
                row = _mos_row(rng, corpus, video, mos=mos, label=label, std_dev=video.std_dev)
            if padding:
                row.update(padding)
            if first:
                _check_mos_keys(row)
                first = False
            yield row
        earlier.extend(this_corpus)
        if len(earlier) > 50_000:  # bound memory on huge samples
            earlier = rng.sample(earlier, 50_000)
