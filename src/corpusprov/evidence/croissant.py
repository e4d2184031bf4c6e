"""A corpus as Croissant 1.0 JSON-LD: its file, its row contract as a RecordSet, its sources and its manifest.

Built from the manifest (the bytes it names re-hashed, so the file never claims a sha256 the
corpus lacks); no wall clock, so the same manifest gives the same bytes. Croissant 1.0, not 1.1:
1.1's ``@context`` makes ``name``/``description`` language maps older readers do not take.
Provenance: the manifest is a second ``cr:FileObject`` (``@id`` ``manifest``, with its sha256)
no RecordSet reads, named as ``subjectOf`` by the ``prov:wasGeneratedBy`` activity (command,
times, tool); the input shards (and aggregate's source corpora) are ``isBasedOn``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from corpusprov.errors import DataError, InputError
from corpusprov.io.fsutil import atomic_writer
from corpusprov.io.hashing import Digest, hash_file
from corpusprov.params.defaults import UNIFIED_FIELDS
from corpusprov.record.manifest import Manifest, OutputEntry, load_manifest
from corpusprov.record.redact import OUTSIDE_REPO

__all__ = [
    "CONFORMS_TO",
    "CONTEXT",
    "ENCODE_GRID_TYPES",
    "CroissantDocument",
    "build_croissant",
    "croissant_bytes",
    "default_croissant_path",
    "write_croissant",
]

CONFORMS_TO: Final = "http://mlcommons.org/croissant/1.0"

#: The terms the standard Croissant 1.0 ``@context`` maps to ``cr:`` plus the same name.
# fmt: off
_CR_TERMS: Final = (
    "citeAs", "column", "equivalentProperty", "extract", "field", "fileProperty", "fileObject", "fileSet", "format",
    "includes", "isLiveDataset", "jsonPath", "key", "md5", "parentField", "path", "recordSet", "references", "regex",
    "repeated", "replace", "samplingRate", "separator", "source", "subField", "transform",
)
# fmt: on
#: The standard Croissant 1.0 ``@context`` (as mlcroissant writes it), plus ``prov`` for W3C PROV-O.
CONTEXT: Final[dict[str, Any]] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    **{term: f"cr:{term}" for term in _CR_TERMS},
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "prov": "http://www.w3.org/ns/prov#",
    "sc": "https://schema.org/",
}

_TEXT: Final = "sc:Text"
_INTEGER: Final = "sc:Integer"
_FLOAT: Final = "sc:Float"
_BOOLEAN: Final = "sc:Boolean"
_PYTHON_TYPES: Final[dict[type, str]] = {str: _TEXT, int: _INTEGER, float: _FLOAT}

#: Croissant data types of the vmaf-tune encode-grid keys (schema version 3). ``preset`` is text:
#: libx264 names presets, SVT-AV1 and libaom number them. ``crf`` is a float: some encoders take
#: fractional CRF, and an integer cast would truncate 23.5 silently. ``timestamp`` is a date-time
#: because pandas (which mlcroissant reads JSON Lines with) turns a column of that name into one.
#: A required key this table does not know is described as text.
#: (Packed by type, several a line: 54 short names one a line would be most of the module.)
# fmt: off
_ENCODE_GRID_TEXT: Final = (
    "run_id", "src", "src_sha256", "pix_fmt", "encoder", "encoder_version", "preset", "extra_params", "encode_path",
    "vmaf_model", "ffmpeg_version", "vmaf_binary_version", "clip_mode", "hdr_transfer", "hdr_primaries",
)
_ENCODE_GRID_INTEGER: Final = (
    "schema_version", "width", "height", "encode_size_bytes", "encode_time_ms", "score_time_ms", "exit_status",
    "shot_count",
)
_ENCODE_GRID_FLOAT: Final = (
    "framerate", "duration_s", "crf", "bitrate_kbps", "vmaf_score", "shot_avg_duration_sec", "shot_duration_std_sec",
    "adm2_mean", "vif_scale0_mean", "vif_scale1_mean", "vif_scale2_mean", "vif_scale3_mean", "motion2_mean",
    "adm2_std", "vif_scale0_std", "vif_scale1_std", "vif_scale2_std", "vif_scale3_std", "motion2_std",
    "enc_internal_qp_mean", "enc_internal_qp_std", "enc_internal_bits_mean", "enc_internal_bits_std",
    "enc_internal_mv_mean", "enc_internal_mv_std", "enc_internal_itex_mean", "enc_internal_ptex_mean",
    "enc_internal_intra_ratio", "enc_internal_skip_ratio",
)
# fmt: on
ENCODE_GRID_TYPES: Final[dict[str, str]] = {
    **dict.fromkeys(_ENCODE_GRID_TEXT, _TEXT),
    **dict.fromkeys(_ENCODE_GRID_INTEGER, _INTEGER),
    **dict.fromkeys(_ENCODE_GRID_FLOAT, _FLOAT),
    "timestamp": "sc:DateTime",
    "hdr_forced": _BOOLEAN,
}

#: What ``aggregate`` adds to a passthrough row (``output_row: passthrough``).
_PASSTHROUGH_ADDED: Final = ("mos", "mos_native", "mos_native_scale", "corpus_source")
_CORPUS_ID: Final = "corpus"
_MANIFEST_ID: Final = "manifest"
_NAME_FORBIDDEN: Final = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CroissantDocument:
    """A built Croissant document and the facts a caller reports about it."""

    document: dict[str, Any]
    """The JSON-LD document."""
    target: Path
    """Where it is meant to be written (its folder anchors every relative ``contentUrl``)."""
    record_set: str
    """``@id`` of the RecordSet describing the corpus rows."""
    fields: int
    """Number of ``cr:Field``s in it."""
    rows: int
    """Rows the manifest says the corpus holds."""


def default_croissant_path(corpus: Path) -> Path:
    """The corpus path with ``.jsonl`` replaced by ``.croissant.json`` (appended for other suffixes)."""
    return corpus.with_name(f"{corpus.name.removesuffix('.jsonl')}.croissant.json")


def build_croissant(manifest_path: Path, root: Path, target: Path | None = None) -> CroissantDocument:
    """Build the Croissant document for the corpus of the manifest at ``manifest_path``.

    ``root`` is the repository root the manifest's paths are relative to; ``target`` is where
    the document will be written [default: :func:`default_croissant_path` of the corpus].
    """
    root = Path(os.path.abspath(root))
    display = _display(manifest_path, root)
    manifest, _ = load_manifest(manifest_path, display)
    corpus = _corpus_entry(manifest, display)
    corpus_file = root / corpus.path
    target = Path(os.path.abspath(target if target is not None else default_croissant_path(corpus_file)))
    corpus_digest = _checked_digest(corpus_file, corpus.path, corpus.sha256, corpus.bytes)
    manifest_digest = _digest(manifest_path, display, "manifest")
    fields, record_set_id, description = _row_contract(manifest, display)
    document_name = _dataset_name(corpus.path)
    conversions = _scale_conversions(manifest, display)
    record_set = {
        "@type": "cr:RecordSet",
        "@id": record_set_id,
        "name": record_set_id,
        "description": description,
        "field": [_field(record_set_id, name, data_type) for name, data_type in fields],
    }
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": document_name,
        "description": _description(manifest, corpus.rows),
        "url": _relative_url(corpus_file, target),
        # No release numbering exists for a build: 0.0.0 says so, the build metadata names the bytes.
        "version": f"0.0.0+sha256.{corpus_digest.sha256[:12]}",
        "datePublished": manifest.provenance["finished_at_utc"],
        "distribution": [
            _file_object(
                _CORPUS_ID, corpus_file, target, corpus_digest, "application/jsonlines", f"The corpus ({corpus.path})."
            ),
            _file_object(
                _MANIFEST_ID,
                manifest_path,
                target,
                manifest_digest,
                "application/json",
                f"The corpusprov manifest sidecar ({display}): inputs, params, policy, counters, provenance.",
            ),
        ],
        "recordSet": [record_set],
        "isBasedOn": [*_source_corpora(conversions), *_input_shards(manifest, root, target)],
        "prov:wasGeneratedBy": _activity(manifest),
        **_citation_and_licence(manifest, conversions, document_name),
    }
    return CroissantDocument(document, target, record_set_id, len(fields), corpus.rows or 0)


def croissant_bytes(document: dict[str, Any]) -> bytes:
    """The document as written: keys sorted, 2-space indent, UTF-8, trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_croissant(built: CroissantDocument) -> None:
    """Write ``built`` to its target atomically (a failed write leaves no file)."""
    with atomic_writer(built.target) as handle:
        handle.write(croissant_bytes(built.document))


def _display(path: Path, root: Path) -> str:
    """``path`` as messages name it: repo-relative when it lies in ``root``."""
    absolute = Path(os.path.abspath(path))
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(path)


def _corpus_entry(manifest: Manifest, display: str) -> OutputEntry:
    corpus = manifest.output("corpus")
    if corpus is None:
        raise DataError(
            "manifest records no corpus output", path=display, fix="give the manifest of a merge or aggregate output"
        )
    if corpus.path.startswith(OUTSIDE_REPO):
        raise DataError(
            f"the corpus {corpus.path} was written outside the repository; its location is not recorded",
            path=display,
            fix="write the corpus inside the repository and re-run the stage",
        )
    return corpus


def _digest(path: Path, display: str, what: str) -> Digest:
    try:
        return hash_file(path)
    except FileNotFoundError:
        raise InputError(f"{what} does not exist", path=display, fix="`dvc pull` or `dvc checkout` it") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=display, fix="check its permissions") from None


def _checked_digest(path: Path, display: str, sha256: str, size: int) -> Digest:
    """The file's digest, refused when it is not the one the manifest records."""
    digest = _digest(path, display, "the corpus its manifest names")
    if digest.sha256 != sha256 or digest.bytes != size:
        raise DataError(
            f"the corpus is not the one its manifest records (sha256 {digest.sha256[:12]}…, "
            f"{digest.bytes} bytes; the manifest says {sha256[:12]}…, {size} bytes)",
            path=display,
            fix="restore it with `dvc checkout`, or re-run the stage",
        )
    return digest


def _relative_url(path: Path, target: Path) -> str:
    """``path`` relative to the folder of ``target``, with forward slashes (mlcroissant resolves it there)."""
    return Path(os.path.relpath(os.path.abspath(path), target.parent)).as_posix()


def _dataset_name(corpus: str) -> str:
    stem = PurePosixPath(corpus).name.removesuffix(".jsonl")
    return _NAME_FORBIDDEN.sub("-", stem).strip("-") or "corpus"


def _description(manifest: Manifest, rows: int | None) -> str:
    if manifest.kind == "aggregate":
        what = "MOS-labelled video-quality corpora normalised onto one 0-100 scale and de-duplicated across corpora"
    else:
        what = "encode-grid rows (source x encoder x preset x crf, with VMAF scores) merged and de-duplicated"
    return (
        f"{rows} rows of {what}, written by `corpusprov {manifest.kind}` from {len(manifest.inputs)} input shard(s). "
        "Every input, param and counter is recorded in the manifest sidecar (FileObject `manifest`)."
    )


def _file_object(
    node_id: str, path: Path, target: Path, digest: Digest, encoding: str, description: str
) -> dict[str, Any]:
    return {
        "@type": "cr:FileObject",
        "@id": node_id,
        "name": node_id,
        "description": description,
        "contentUrl": _relative_url(path, target),
        "contentSize": f"{digest.bytes} B",
        "encodingFormat": encoding,
        "sha256": digest.sha256,
    }


def _required_keys(manifest: Manifest, display: str) -> list[str]:
    """The required keys the manifest's policy records (the team may have configured them)."""
    keys = manifest.policy.get("required_keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(key, str) for key in keys):
        raise DataError(
            "manifest policy records no required_keys list", path=display, fix="re-run the stage to rewrite it"
        )
    return keys


def _row_contract(manifest: Manifest, display: str) -> tuple[list[tuple[str, str]], str, str]:
    """The fields a row is guaranteed to carry, with Croissant types; the RecordSet's id and description."""
    if manifest.kind == "aggregate":
        unified = {name: _PYTHON_TYPES[kind] for name, kind, _ in UNIFIED_FIELDS}
        if manifest.policy.get("output_row", "unified") == "unified":
            return list(unified.items()), "unified_mos_rows", "The unified 17-field MOS row, one per source."
        names = dict.fromkeys([*_required_keys(manifest, display), *_PASSTHROUGH_ADDED])
        return (
            [(name, unified.get(name, _TEXT)) for name in names],
            "mos_rows",
            "Passthrough MOS rows: the required keys and the unified scores; rows may carry more keys.",
        )
    return (
        [(name, ENCODE_GRID_TYPES.get(name, _TEXT)) for name in _required_keys(manifest, display)],
        "encode_grid_rows",
        "Encode-grid rows: the keys merge.required_keys guarantees (null or NaN where a value was not finite); "
        "rows keep every other key of their input row.",
    )


def _field(record_set_id: str, name: str, data_type: str) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"{record_set_id}/{name}",
        "name": name,
        "description": f"The `{name}` key of each JSONL row.",
        "dataType": data_type,
        "source": {"fileObject": {"@id": _CORPUS_ID}, "extract": {"column": name}},
    }


def _scale_conversions(manifest: Manifest, display: str) -> list[dict[str, Any]]:
    """Aggregate's per-corpus scale conversions (citation, licence, formula), sorted by corpus; merge has none."""
    conversions = manifest.extra.get("scale_conversions", [])
    # Not in the manifest schema (an aggregate extra): check the shape before reading it.
    if not isinstance(conversions, list) or not all(
        isinstance(item, dict) and isinstance(item.get("corpus"), str) for item in conversions
    ):
        raise DataError(
            "manifest scale_conversions is not a list of corpus entries", path=display, fix="re-run the stage"
        )
    return sorted(conversions, key=lambda item: str(item["corpus"]))


def _citation_and_licence(manifest: Manifest, conversions: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """``citeAs`` and ``license``: one per source corpus (aggregate), the build itself for merge."""
    if not conversions:
        # Merge rows name no corpus: cite the build itself.
        return {
            "citeAs": f"{name}, built by corpusprov {manifest.tool.get('version', '')} "
            f"(`corpusprov {manifest.kind}`) on {manifest.provenance['finished_at_utc']}",
            "license": "not recorded: encode-grid shards carry no licence; see their owners' terms (isBasedOn)",
        }
    citations = [f"{item['corpus']}: {item['citation']}" for item in conversions if item.get("citation")]
    licences = [f"{item['corpus']}: {item['licence']}" for item in conversions if item.get("licence")]
    result: dict[str, Any] = {}
    if citations:
        result["citeAs"] = "\n".join(citations)
    if licences:
        result["license"] = licences
    return result


def _source_corpora(conversions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    corpora = []
    for item in conversions:
        entry: dict[str, Any] = {
            "@type": "sc:Dataset",
            "name": item["corpus"],
            "description": f"{item.get('label')} scores, mapped to 0-100 by {item.get('formula')}; "
            f"{item.get('rows_out')} rows in this corpus.",
        }
        if item.get("citation"):
            entry["citation"] = item["citation"]
        if item.get("licence"):
            entry["license"] = item["licence"]
        corpora.append(entry)
    return corpora


def _input_shards(manifest: Manifest, root: Path, target: Path) -> list[dict[str, Any]]:
    shards = []
    for record in manifest.inputs:
        shard: dict[str, Any] = {
            "@type": "sc:MediaObject",
            "name": record.path,
            "encodingFormat": "application/jsonlines",
            "contentSize": f"{record.bytes} B",
            "sha256": record.sha256,
        }
        if not record.path.startswith(OUTSIDE_REPO):
            shard["contentUrl"] = _relative_url(root / record.path, target)
        shards.append(shard)
    return shards


def _activity(manifest: Manifest) -> dict[str, Any]:
    provenance = manifest.provenance
    activity: dict[str, Any] = {
        "@type": "prov:Activity",
        "name": f"corpusprov {manifest.kind}",
        "description": " ".join(manifest.command.get("argv", [])),
        "prov:startedAtTime": provenance["started_at_utc"],
        "prov:endedAtTime": provenance["finished_at_utc"],
        "prov:wasAssociatedWith": {
            "@type": "prov:SoftwareAgent",
            "name": manifest.tool.get("name", "corpusprov"),
            "softwareVersion": manifest.tool.get("version", ""),
        },
        "subjectOf": {"@id": _MANIFEST_ID},
    }
    commit = (provenance.get("git") or {}).get("commit")
    if commit:
        activity["prov:wasAssociatedWith"]["identifier"] = f"git:{commit}"
    return activity
