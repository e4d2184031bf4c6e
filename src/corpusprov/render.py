"""Text rendering of manifests for people (the CLI prints what these return)."""

from __future__ import annotations

from typing import Any

from corpusprov.manifest import Manifest
from corpusprov.scales import AggregateParams

__all__ = ["render_manifest", "render_scales"]


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _flat(prefix: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        lines: list[str] = []
        for key in sorted(value):
            lines.extend(_flat(f"{prefix}.{key}" if prefix else str(key), value[key]))
        return lines
    return [f"{prefix} = {value!r}" if not isinstance(value, list) else
            f"{prefix} = [{', '.join(map(str, value))}]"]


def render_manifest(manifest: Manifest) -> str:
    """A readable summary: run, inputs, outputs, counters, policy, params."""
    provenance = manifest.provenance
    git = provenance.get("git") or {}
    commit = git.get("commit")
    lines = [
        f"{manifest.kind} manifest v{manifest.manifest_version} "
        f"by {manifest.tool['name']} {manifest.tool['version']}",
        f"  ran       {provenance['started_at_utc']} -> {provenance['finished_at_utc']} "
        f"({provenance['duration_s']:.3f} s)",
        f"  git       {commit[:12] if commit else 'no commit'}"
        f"{' (dirty work tree)' if git.get('dirty') else ''}",
        f"  dvc       stage {provenance.get('dvc_stage') or '-'}, "
        f"experiment {provenance.get('dvc_exp_name') or '-'}",
        f"  software  python {provenance['python']} on {provenance['platform']}; "
        + ", ".join(f"{name} {version}" for name, version in provenance["packages"].items()
                    if version),
        f"  command   {' '.join(manifest.command['argv'])}",
        f"  params    {manifest.params['path'] or '(built-in defaults)'} "
        f"group {manifest.params['group']}"
        + (f" sha256 {manifest.params['sha256'][:16]}..." if manifest.params["sha256"] else ""),
        "",
        f"inputs ({len(manifest.inputs)}):",
    ]
    for record in manifest.inputs:
        override = f"  label={record.label_override}" if record.label_override else ""
        lines.append(f"  {record.path}  {_size(record.bytes)}  {record.rows_read} rows  "
                     f"md5 {record.md5}  sha256 {record.sha256[:16]}...{override}")
    for folder in manifest.input_folders:
        lines.append(f"  folder {folder['path']}: {len(folder['files'])} file(s), "
                     f"DVC .dir md5 {folder['dvc_dir_md5']}")
    lines.append("")
    lines.append("outputs:")
    for entry in manifest.outputs:
        rows = f"  {entry.rows} rows" if entry.rows is not None else ""
        lines.append(f"  {entry.role:8} {entry.path}  {_size(entry.bytes)}{rows}  md5 {entry.md5}")
    lines.append("")
    lines.append("counters:")
    width = max((len(name) for name in manifest.counters), default=0)
    for name, value in manifest.counters.items():
        if value or name in ("rows_in", "rows_out"):
            lines.append(f"  {name:<{width}}  {value}")
    accounting = manifest.accounting
    parts = [*accounting["out"], *accounting["duplicates"], *accounting["rejected"]]
    total = sum(manifest.counters.get(name, 0) for name in parts)
    verdict = "adds up" if total == manifest.counters.get(accounting["in"]) else "DOES NOT ADD UP"
    lines.append(f"  ({accounting['in']} = out + duplicates + rejected: {verdict})")
    lines.append("")
    lines.append("policy:")
    lines.extend(f"  {line}" for line in _flat("", manifest.policy))
    lines.append("")
    lines.append(f"serialization: {manifest.serialization['float_format']}, "
                 f"keys {manifest.serialization['keys']}, {manifest.serialization['separators']}")
    return "\n".join(lines)


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                 for row in rows)
    return lines


def render_scales(params: AggregateParams) -> str:
    """The scale map as a table a person can check at a glance."""
    rows = []
    for corpus, scale in params.scales.items():
        rows.append([
            corpus,
            f"{scale.native_min:g}-{scale.native_max:g}",
            "higher is better" if scale.higher_is_better else "lower is better (DMOS)",
            scale.formula(),
            scale.label,
            scale.citation or "-",
        ])
    lines = _table(["corpus", "native", "direction", "formula (unified 0-100, never clipped)",
                    "label", "citation"], rows)
    lines.append("")
    lines.append(f"range slack: {params.range_slack:g} native units either side; "
                 f"dedup key: {', '.join(params.dedup_key)}")
    for path, label in sorted(params.overrides.items()):
        lines.append(f"override: every row of {path} is {label}")
    return "\n".join(lines)
