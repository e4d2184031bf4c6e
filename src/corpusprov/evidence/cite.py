"""Citations for a model card's "training data" section: a built corpus, its sources and its evidence chain.

Built from the manifest (and the repository's ``dvc.lock`` when there is one); the renderers are
pure and read no clock, so the same manifest and ``dvc.lock`` give the same bytes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from corpusprov.errors import DataError
from corpusprov.io.hashing import hash_file
from corpusprov.prove.dvcfiles import load_dvc_lock
from corpusprov.record.manifest import Manifest, load_manifest

__all__ = [
    "Citation",
    "CorpusSource",
    "LockEvidence",
    "bibtex_escape",
    "build_citation",
    "render_bibtex",
    "render_json",
    "render_markdown",
]

_LOCK: Final = "dvc.lock"


@dataclass(frozen=True)
class CorpusSource:
    """One source the build read: a MOS corpus (aggregate) or an input shard (merge)."""

    name: str
    """Corpus name (aggregate) or the shard's repo-relative path (merge)."""
    rows_read: int | None
    """Rows read from it (merge; aggregate records rows per input shard, not per corpus)."""
    rows_kept: int
    """Rows of it in the built corpus."""
    citation: str | None
    """How the corpus asks to be cited (aggregate's scale map), else ``None``."""
    licence: str | None
    """Its licence as the scale map states it, else ``None``."""
    formula: str | None
    """The scale conversion applied (aggregate), e.g. ``mos = 25 * x - 25``."""


@dataclass(frozen=True)
class LockEvidence:
    """What ``dvc.lock`` says about the corpus: the link from the commit to the bytes."""

    sha256: str
    """sha256 of ``dvc.lock`` as read."""
    stage: str | None
    """The stage whose outs list the corpus, else ``None``."""
    md5_matches: bool
    """Whether that stage lists the corpus with the manifest's md5."""


@dataclass(frozen=True)
class Citation:
    """Everything a model card cites about one built corpus."""

    kind: str
    """``merge`` or ``aggregate``."""
    path: str
    """Repo-relative path of the corpus file."""
    sha256: str
    """sha256 of the corpus as the manifest records it."""
    rows: int
    """Rows in the corpus."""
    tool: str
    """Tool name and version, e.g. ``corpusprov 0.1.0``."""
    git_commit: str | None
    """Commit the build ran from, ``None`` when the manifest records none."""
    git_dirty: bool | None
    """Whether the working tree had uncommitted changes (``None``: unknown)."""
    dvc_stage: str | None
    """The DVC stage recorded in the manifest, if any."""
    started_at_utc: str
    """Build start, as the manifest records it."""
    finished_at_utc: str
    """Build end, as the manifest records it."""
    lock: LockEvidence | None
    """The ``dvc.lock`` evidence, ``None`` when the repository has no ``dvc.lock``."""
    sources: tuple[CorpusSource, ...]
    """The corpora (aggregate) or shards (merge) the build read, sorted by name."""
    dedup_key: tuple[str, ...]
    """The dedup key fields."""
    dedup_rule: str
    """The dedup rule in words, from the manifest's policy."""
    rejected_total: int
    """Rows rejected, all reasons."""
    rejected: dict[str, int]
    """Each non-zero ``rejected_*`` counter (without the prefix)."""
    duplicates: dict[str, int]
    """Each duplicate counter."""

    @property
    def key(self) -> str:
        """The stable BibTeX key of the build: kind plus the corpus' short sha256."""
        return f"corpusprov-{self.kind}-{self.sha256[:12]}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        document = asdict(self)
        document["sources"] = [asdict(source) for source in self.sources]
        document["key"] = self.key
        return document


def build_citation(manifest_path: Path, root: Path) -> Citation:
    """The citation of the corpus whose manifest is at ``manifest_path`` (repo-relative paths under ``root``)."""
    root = Path(os.path.abspath(root))
    absolute = Path(os.path.abspath(manifest_path))
    display = absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(manifest_path)
    manifest, _ = load_manifest(manifest_path, display)
    corpus = manifest.output("corpus")
    if corpus is None or corpus.rows is None:
        raise DataError(
            "manifest records no corpus output with rows", path=display, fix="give the manifest of a corpus output"
        )
    provenance = manifest.provenance
    git = provenance.get("git") or {}
    counters = manifest.counters
    rejected = {
        name.removeprefix("rejected_"): count
        for name, count in sorted(counters.items())
        if count and name.startswith("rejected_")
    }
    dedup = manifest.policy.get("dedup") or {}
    return Citation(
        kind=manifest.kind,
        path=corpus.path,
        sha256=corpus.sha256,
        rows=corpus.rows,
        tool=f"{manifest.tool.get('name', 'corpusprov')} {manifest.tool.get('version', '')}".strip(),
        git_commit=git.get("commit"),
        git_dirty=git.get("dirty"),
        dvc_stage=provenance.get("dvc_stage"),
        started_at_utc=str(provenance.get("started_at_utc", "")),
        finished_at_utc=str(provenance.get("finished_at_utc", "")),
        lock=_lock_evidence(root, corpus.path, corpus.md5, provenance.get("dvc_stage")),
        sources=_sources(manifest),
        dedup_key=tuple(str(field) for field in dedup.get("key", ())),
        dedup_rule=_dedup_rule(manifest),
        rejected_total=sum(rejected.values()),
        rejected=rejected,
        duplicates={name: count for name, count in sorted(counters.items()) if name.endswith("duplicates")},
    )


def _dedup_rule(manifest: Manifest) -> str:
    dedup = manifest.policy.get("dedup") or {}
    if "resolver" in dedup:
        return str(dedup["resolver"])
    # merge records the rule as keep + key semantics rather than one sentence.
    keep = dedup.get("keep")
    semantics = dedup.get("key_semantics")
    parts = [
        f"keep the {keep} occurrence of each key" if keep else "",
        f"keys compare {semantics}" if semantics else "",
    ]
    return "; ".join(part for part in parts if part) or "not recorded"


def _sources(manifest: Manifest) -> tuple[CorpusSource, ...]:
    if manifest.kind == "aggregate":
        breakdown = (manifest.extra.get("breakdown") or {}).get("corpus") or {}
        sources = []
        for conversion in manifest.extra.get("scale_conversions") or []:
            name = str(conversion["corpus"])
            kept = conversion.get("rows_out", (breakdown.get(name) or {}).get("rows", 0))
            sources.append(
                CorpusSource(
                    name=name,
                    rows_read=None,
                    rows_kept=int(kept),
                    citation=conversion.get("citation"),
                    licence=conversion.get("licence"),
                    formula=conversion.get("formula"),
                )
            )
        return tuple(sorted(sources, key=lambda source: source.name))
    return tuple(
        CorpusSource(
            name=record.path,
            rows_read=record.rows_read,
            rows_kept=record.counters.get("rows_out", 0),
            citation=None,
            licence=None,
            formula=None,
        )
        for record in sorted(manifest.inputs, key=lambda record: record.path)
    )


def _lock_evidence(root: Path, corpus: str, md5: str, recorded_stage: Any) -> LockEvidence | None:
    lock = load_dvc_lock(root)
    if lock is None:
        return None
    stages: dict[str, Any] = lock["stages"]
    # The recorded stage first: a corpus path listed by two stages is the recorded one's.
    order = sorted(stages, key=lambda name: (name != recorded_stage, name))
    for name in order:
        for out in stages[name]["outs"]:
            if out.get("path") == corpus:
                return LockEvidence(
                    sha256=hash_file(root / _LOCK).sha256, stage=name, md5_matches=out.get("md5") == md5
                )
    return LockEvidence(sha256=hash_file(root / _LOCK).sha256, stage=None, md5_matches=False)


def _commit_text(citation: Citation) -> str:
    if citation.git_commit is None:
        return "none recorded (built outside a git commit)"
    if citation.git_dirty:
        return f"`{citation.git_commit}` (dirty tree: uncommitted changes were present)"
    if citation.git_dirty is None:
        return f"`{citation.git_commit}` (tree state not recorded)"
    return f"`{citation.git_commit}` (clean tree)"


def _lock_text(citation: Citation) -> str:
    lock = citation.lock
    if lock is None:
        return "no dvc.lock (built outside DVC)"
    if lock.stage is None:
        return f"`{_LOCK}` sha256 `{lock.sha256}`; no stage lists this corpus (not part of the evidence chain)"
    verdict = "the same md5 as the manifest" if lock.md5_matches else "a DIFFERENT md5 from the manifest"
    return f"`{_LOCK}` sha256 `{lock.sha256}`; stage `{lock.stage}` lists this corpus with {verdict}"


def _cell(text: str | None) -> str:
    """Text safe inside a Markdown table cell."""
    return "—" if not text else text.replace("|", "\\|").replace("\n", " ")


def render_markdown(citation: Citation) -> str:
    """The "training data" section of a model card, in Markdown."""
    lines = [
        f"## Training data: `{citation.path}`",
        "",
        f"- Corpus: `{citation.path}` ({citation.rows} rows), sha256 `{citation.sha256}`",
        f"- Built by: {citation.tool} (`corpusprov {citation.kind}`)"
        + (f", DVC stage `{citation.dvc_stage}`" if citation.dvc_stage else ""),
        f"- Built: {citation.started_at_utc} to {citation.finished_at_utc} (UTC)",
        f"- Git commit: {_commit_text(citation)}",
        f"- dvc.lock: {_lock_text(citation)}",
        f"- Cite as: `{citation.key}` (BibTeX: `corpusprov cite --format bibtex`)",
        "",
    ]
    if citation.kind == "aggregate":
        lines += [
            "### Source corpora",
            "",
            "| corpus | rows | licence | citation | scale conversion |",
            "| --- | ---: | --- | --- | --- |",
        ]
        lines += [
            f"| {_cell(source.name)} | {source.rows_kept} | {_cell(source.licence)} | {_cell(source.citation)} "
            f"| {_cell(source.formula)} |"
            for source in citation.sources
        ]
    else:
        lines += ["### Input shards", "", "| shard | rows read | rows kept |", "| --- | ---: | ---: |"]
        lines += [f"| {_cell(source.name)} | {source.rows_read} | {source.rows_kept} |" for source in citation.sources]
    rejected = ", ".join(f"{name} {count}" for name, count in citation.rejected.items())
    duplicates = ", ".join(f"{name} {count}" for name, count in citation.duplicates.items())
    lines += [
        "",
        "### Cleaning",
        "",
        f"- Dedup key: {', '.join(f'`{field}`' for field in citation.dedup_key) or 'not recorded'}",
        f"- Dedup rule: {citation.dedup_rule}",
        f"- Duplicates dropped: {duplicates or 'none'}",
        f"- Rows rejected: {citation.rejected_total}" + (f" ({rejected})" if rejected else ""),
    ]
    return "\n".join(lines) + "\n"


_BIBTEX_SPECIALS: Final = re.compile(r"[\\{}&%$#_^~]")
_BIBTEX_ESCAPES: Final = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
}


def bibtex_escape(text: str) -> str:
    """``text`` as a BibTeX field value: specials escaped, braces balanced, non-ASCII kept as UTF-8."""
    return _BIBTEX_SPECIALS.sub(lambda match: _BIBTEX_ESCAPES.get(match[0], "\\" + match[0]), " ".join(text.split()))


def _entry(key: str, fields: list[tuple[str, str]]) -> str:
    body = ",\n".join(f"  {name} = {{{bibtex_escape(value)}}}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}\n"


def _source_key(name: str) -> str:
    return "corpus-" + (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "unnamed")


def render_bibtex(citation: Citation) -> str:
    """A ``@misc`` entry for the built corpus, then one per cited source corpus (UTF-8)."""
    note = [f"{citation.rows} rows", f"sha256 {citation.sha256}", f"git commit {_commit_text(citation)}"]
    note.append(_lock_text(citation).replace("`", ""))
    entries = [
        _entry(
            citation.key,
            [
                ("title", f"{citation.path}: corpus built by corpusprov {citation.kind}"),
                ("howpublished", citation.path),
                ("year", citation.finished_at_utc[:4]),
                ("note", "; ".join(note).replace("`", "")),
                ("version", citation.sha256[:12]),
            ],
        )
    ]
    for source in citation.sources:
        if source.citation:
            fields = [("title", source.name), ("note", source.citation)]
            if source.licence:
                fields.append(("license", source.licence))
            entries.append(_entry(_source_key(source.name), fields))
    return "\n".join(entries)


def render_json(citation: Citation) -> str:
    """The citation as JSON: sorted keys, 2-space indent, UTF-8."""
    return json.dumps(citation.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
