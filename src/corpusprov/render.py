"""Text rendering of manifests for people (the CLI prints what these return)."""

from __future__ import annotations

from typing import Any

from corpusprov.params.stages import AggregateParams
from corpusprov.prove.diff import ManifestDiff
from corpusprov.prove.findings import VerifyReport
from corpusprov.prove.lineage import LineageNode
from corpusprov.prove.replay import ReplayResult
from corpusprov.prove.trace import TraceResult
from corpusprov.record.manifest import Manifest

__all__ = [
    "render_diff",
    "render_findings",
    "render_lineage",
    "render_manifest",
    "render_replay",
    "render_scales",
    "render_stage_summary",
    "render_trace",
]


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
    return [f"{prefix} = {value!r}" if not isinstance(value, list) else f"{prefix} = [{', '.join(map(str, value))}]"]


def _git_changes(git: dict[str, Any]) -> str:
    """`` (params changed; code as committed)``: what differs from the commit, code apart."""
    changed = git.get("changed")
    baseline = git.get("experiment_baseline")
    tail = f", experiment baseline {baseline[:12]}" if baseline else ""
    if not isinstance(changed, dict):
        return (" (dirty work tree)" if git.get("dirty") else "") + tail
    kinds = [kind for kind in ("code", "params", "data", "other") if changed.get(kind)]
    if not kinds:
        return " (clean)" + tail
    code = "" if changed.get("code") else "; code as committed"
    return f" ({', '.join(kinds)} changed{code}){tail}"


def _aggregate_extra(extra: dict[str, Any]) -> list[str]:
    """The scale conversions applied and the per-input label overrides (aggregate manifests)."""
    lines: list[str] = []
    conversions = extra.get("scale_conversions")
    if conversions:
        lines.extend(["", "scale conversions:"])
        for item in conversions:
            direction = "" if item.get("higher_is_better", True) else "  (DMOS: lower is better)"
            lines.append(
                f"  {item['corpus']}: {item['formula']}  [{item['native_min']:g}, "
                f"{item['native_max']:g}] {item['label']}  {item['rows_out']} rows out{direction}"
            )
            for name in ("citation", "licence"):
                if item.get(name):
                    lines.append(f"    {name}: {item[name]}")
    if "overrides" in extra:
        lines.extend(["", "overrides:"])
        lines.extend(f"  {item['input']}: label {item['label']}" for item in extra["overrides"])
        if not extra["overrides"]:
            lines.append("  none")
    return lines


def render_manifest(manifest: Manifest) -> str:
    """A readable summary: run, inputs, outputs, counters, policy, params."""
    provenance = manifest.provenance
    git = provenance.get("git") or {}
    commit = git.get("commit")
    lines = [
        f"{manifest.kind} manifest v{manifest.manifest_version} by {manifest.tool['name']} {manifest.tool['version']}",
        f"  ran       {provenance['started_at_utc']} -> {provenance['finished_at_utc']} "
        f"({provenance['duration_s']:.3f} s)",
        f"  git       {commit[:12] if commit else 'no commit'}{_git_changes(git)}",
        f"  dvc       stage {provenance.get('dvc_stage') or '-'}, experiment {provenance.get('dvc_exp_name') or '-'}",
        f"  software  python {provenance['python']} on {provenance['platform']}; "
        + ", ".join(f"{name} {version}" for name, version in provenance["packages"].items() if version),
        f"  command   {' '.join(manifest.command['argv'])}",
        f"  params    {manifest.params['path'] or '(built-in defaults)'} "
        f"group {manifest.params['group']}"
        + (f" sha256 {manifest.params['sha256'][:16]}..." if manifest.params["sha256"] else ""),
        "",
        f"inputs ({len(manifest.inputs)}):",
    ]
    for record in manifest.inputs:
        override = f"  label={record.label_override}" if record.label_override else ""
        lines.append(
            f"  {record.path}  {_size(record.bytes)}  {record.rows_read} rows  "
            f"md5 {record.md5}  sha256 {record.sha256[:16]}...{override}"
        )
    for folder in manifest.input_folders:
        lines.append(f"  folder {folder['path']}: {len(folder['files'])} file(s), DVC .dir md5 {folder['dvc_dir_md5']}")
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
    lines.extend(_aggregate_extra(manifest.extra))
    lines.append("")
    lines.append(
        f"serialization: {manifest.serialization['float_format']}, "
        f"keys {manifest.serialization['keys']}, {manifest.serialization['separators']}"
    )
    return "\n".join(lines)


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)
    return lines


def render_scales(params: AggregateParams) -> str:
    """The scale map as a table a person can check at a glance."""
    rows = []
    for corpus, scale in params.scales.items():
        rows.append(
            [
                corpus,
                f"{scale.native_min:g}-{scale.native_max:g}",
                "higher is better" if scale.higher_is_better else "lower is better (DMOS)",
                scale.formula(),
                scale.label,
                scale.citation or "-",
            ]
        )
    lines = _table(
        ["corpus", "native", "direction", "formula (unified 0-100, never clipped)", "label", "citation"], rows
    )
    lines.append("")
    lines.append(
        f"range slack: {params.range_slack:g} native units either side; dedup key: {', '.join(params.dedup_key)}"
    )
    for path, label in sorted(params.overrides.items()):
        lines.append(f"override: every row of {path} is {label}")
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render_findings(
    report: VerifyReport,
    *,
    command: str = "verify",
    subject: str = "dvc.lock, manifests and bytes on disk",
    unit: str = "stages",
) -> str:
    """verify's verdict: a summary line, then one row per disagreement with its likely cause."""
    stages = ", ".join(report.stages) or "none"
    if report.ok:
        lines = [f"{command}: OK - {subject} agree ({report.checks} checks; {unit}: {stages})"]
    else:
        lines = [
            f"{command}: FAILED - {len(report.findings)} disagreement(s) in {report.checks} checks ({unit}: {stages})",
            "",
        ]
        rows = [
            [item.stage, item.what, _clip(item.expected, 40), _clip(item.found, 40), item.where]
            for item in report.findings
        ]
        lines.extend(_table(["stage", "what", "expected", "found", "where"], rows))
        lines.append("")
        lines.append("likely causes:")
        seen: set[tuple[str, str]] = set()
        for item in report.findings:
            if (item.where, item.cause) not in seen:
                seen.add((item.where, item.cause))
                lines.append(f"  {item.where}: {item.cause}")
    for item in report.pending:
        lines.append(
            f"pending: {item.stage}: {item.what}: {item.expected} -> {item.found} in {item.where}; "
            f"the build on disk is the previous params' ({item.cause})"
        )
    if report.skipped:
        lines.append(f"(stages without a manifest, not checked: {', '.join(report.skipped)})")
    return "\n".join(lines)


def render_replay(result: ReplayResult) -> str:
    """replay's verdict."""
    if result.reproduced:
        lines = [f"replay: REPRODUCED - {result.kind} output sha256 {result.expected_sha256}"]
    else:
        lines = [
            f"replay: NOT REPRODUCED - {result.kind} output sha256 {result.found_sha256}, "
            f"recorded {result.expected_sha256}"
        ]
        if result.first_difference is not None:
            line, recorded, replayed = result.first_difference
            lines.append(f"  first difference at line {line}:")
            if result.differing_fields:
                lines.extend(f"    {item}" for item in result.differing_fields)
            lines.append(f"    recorded: {recorded}")
            lines.append(f"    replayed: {replayed}")
        if result.note:
            lines.append(f"  ({result.note})")
    if result.rejects_reproduced is not None:
        lines.append(f"  rejects file {'reproduced' if result.rejects_reproduced else 'DIFFERS'}")
    if result.recorded_version != result.version:
        lines.append(f"  note: recorded by corpusprov {result.recorded_version}, replayed with {result.version}")
    if result.kept:
        lines.append(f"  replayed outputs kept in {result.kept}")
    return "\n".join(lines)


def render_trace(result: TraceResult) -> str:
    """trace's answer: every occurrence, the winner, and the rule."""
    key = ", ".join(f"{name}={value!r}" for name, value in result.key.items())
    lines = [f"trace {result.stage} ({result.kind}): {key}"]
    if not result.occurrences:
        lines.append("  no input row carries this key")
    for item in result.occurrences:
        fields = ", ".join(f"{name}={value!r}" for name, value in item.fields.items())
        marker = "*" if item.verdict == "winner" else " "
        lines.append(f" {marker} {item.path}:{item.line}  {item.verdict}")
        lines.append(f"      {fields}")
    lines.append(f"rule: {result.rule}")
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)


def _value(value: Any) -> str:
    return "(absent)" if value is None else (value if isinstance(value, str) else repr(value))


def render_diff(results: list[ManifestDiff]) -> str:
    """Per stage: params, inputs, counters and outputs that changed, or that nothing did."""
    lines: list[str] = []
    for item in results:
        lines.append(f"{item.stage}: {item.a} -> {item.b}")
        if item.same:
            lines.append("  nothing changed")
            continue
        if item.params_changed:
            lines.append("  params:")
            lines.extend(
                f"    {change['key']}: {_value(change['old'])} -> {_value(change['new'])}"
                for change in item.params_changed
            )
        if item.inputs_added or item.inputs_removed or item.inputs_changed:
            lines.append("  inputs:")
            lines.extend(f"    + {entry['path']}  sha256 {entry['sha256'][:16]}..." for entry in item.inputs_added)
            lines.extend(f"    - {entry['path']}  sha256 {entry['sha256'][:16]}..." for entry in item.inputs_removed)
            lines.extend(
                f"    ~ {entry['path']}  sha256 {entry['old'][:16]}... -> {entry['new'][:16]}..."
                for entry in item.inputs_changed
            )
        if item.counters_changed:
            lines.append("  counters:")
            width = max(len(change["name"]) for change in item.counters_changed)
            lines.extend(
                f"    {change['name']:<{width}}  {change['old']} -> {change['new']} ({change['delta']:+d})"
                for change in item.counters_changed
            )
        if item.outputs_changed:
            lines.append("  outputs:")
            lines.extend(
                f"    {entry['role']:8} {entry['path']}  sha256 "
                f"{(entry['old'] or '(none)')[:16]}... -> {(entry['new'] or '(none)')[:16]}..."
                for entry in item.outputs_changed
            )
        if item.policy_changed:
            lines.append("  policy and serialization:")
            lines.extend(
                f"    {change['key']}: {_value(change['old'])} -> {_value(change['new'])}"
                for change in item.policy_changed
            )
        if item.tool_changed:
            lines.append(f"  corpusprov: {item.tool_changed['old']} -> {item.tool_changed['new']}")
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def render_stage_summary(kind: str, report: Any) -> str:
    """The lines a stage run prints: rows in and out, duplicates, rejects, reader quirks, where the files are."""
    manifest = report.manifest
    counters = manifest.counters
    duplicates = sum(counters.get(name, 0) for name in manifest.accounting["duplicates"])
    rejected = sum(counters.get(name, 0) for name in manifest.accounting["rejected"])
    corpus = manifest.output("corpus")
    # The shard quirks the reader accepted, said once so nobody has to open the manifest.
    quirks = []
    if counters.get("blank_lines_skipped"):
        quirks.append(_count(counters["blank_lines_skipped"], "blank line") + " skipped")
    crlf = sum(1 for record in manifest.inputs if record.counters.get("crlf_lines"))
    if crlf:
        quirks.append(_count(crlf, "CRLF shard"))
    empty = sum(1 for record in manifest.inputs if record.bytes == 0)
    if empty:
        quirks.append(_count(empty, "empty input"))
    skipped = manifest.extra.get("skipped_inputs") or []
    if skipped:
        quirks.append(f"{_count(len(skipped), 'missing input')} skipped ({', '.join(skipped)})")
    read = f"; {', '.join(quirks)}" if quirks else ""
    return (
        f"{kind}: {counters['rows_in']} rows in from {len(manifest.inputs)} input(s) -> "
        f"{counters['rows_out']} rows out ({duplicates} duplicates, {rejected} rejected{read})\n"
        f"  corpus:   {corpus.path if corpus else '?'}\n"
        f"  manifest: {report.manifest_path}"
    )


def render_lineage(node: LineageNode) -> str:
    """The chain as a tree: each file with the manifest that made it, down to shards without one."""
    lines: list[str] = []

    def describe(item: LineageNode) -> str:
        rows = f", {item.rows} rows" if item.rows is not None else ""
        text = f"{item.path}  (sha256 {item.sha256[:12]}{rows})"
        if item.made_by is not None:
            made = item.made_by
            counts = f"{made.rows_in} in -> {made.rows_out} out" if made.rows_in is not None else "rows not counted"
            params = f", params {made.params_digest}" if made.params_digest else ""
            text += f"\n    made by {made.kind} ({made.tool}{params}; {counts}): {made.path}"
        elif item.problem is None:
            text += "  [no manifest: a source shard]"
        if item.problem is not None:
            text += f"\n    ! {item.problem}"
        return text

    def walk(item: LineageNode, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("`-- " if last else "|-- ")
        body = describe(item).split("\n")
        lines.append(prefix + branch + body[0])
        child_prefix = prefix + ("" if top else ("    " if last else "|   "))
        lines.extend(child_prefix + ("|" if item.inputs else " ") + extra for extra in body[1:])
        for index, child in enumerate(item.inputs):
            walk(child, child_prefix, index == len(item.inputs) - 1, False)

    walk(node, "", True, True)
    levels = node.levels()
    lines.append(f"{levels} level{'s' if levels != 1 else ''} of manifests")
    return "\n".join(lines)
