"""diff: what changed between two builds' manifests (paths, git revisions or experiment names)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpusprov.dotted import ABSENT, changes
from corpusprov.errors import CorpusprovError, InputError, UsageError
from corpusprov.prove.dvcfiles import plan_stages
from corpusprov.record.manifest import Manifest, parse_manifest

__all__ = ["ManifestDiff", "diff_builds", "diff_manifests"]


@dataclass(frozen=True)
class ManifestDiff:
    """Differences between manifest ``a`` and manifest ``b``."""

    stage: str
    """Stage (or manifest path) compared."""
    a: str
    """Where manifest A came from."""
    b: str
    """Where manifest B came from."""
    inputs_added: list[dict[str, Any]] = field(default_factory=list)
    """Inputs only B read: ``{path, sha256}``."""
    inputs_removed: list[dict[str, Any]] = field(default_factory=list)
    """Inputs only A read."""
    inputs_changed: list[dict[str, Any]] = field(default_factory=list)
    """Same path, different bytes: ``{path, old, new}`` sha256s."""
    params_changed: list[dict[str, Any]] = field(default_factory=list)
    """``{key, old, new}`` per dotted params key."""
    counters_changed: list[dict[str, Any]] = field(default_factory=list)
    """``{name, old, new, delta}``."""
    outputs_changed: list[dict[str, Any]] = field(default_factory=list)
    """``{role, path, old, new}`` sha256s."""
    tool_changed: dict[str, str] | None = None
    """``{old, new}`` corpusprov versions, when they differ."""
    policy_changed: list[dict[str, Any]] = field(default_factory=list)
    """``{key, old, new}`` per dotted key of the effective policy and the serialization."""

    @property
    def same(self) -> bool:
        """True when nothing that describes the build differs."""
        return not (
            self.inputs_added
            or self.inputs_removed
            or self.inputs_changed
            or self.params_changed
            or self.counters_changed
            or self.outputs_changed
            or self.tool_changed
            or self.policy_changed
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**asdict(self), "same": self.same}


def diff_manifests(a: Manifest, b: Manifest, stage: str, a_label: str, b_label: str) -> ManifestDiff:
    """Compare two manifests of the same stage."""
    result = ManifestDiff(stage, a_label, b_label)
    old_inputs = {record.path: record for record in a.inputs}
    new_inputs = {record.path: record for record in b.inputs}
    for path in sorted(set(new_inputs) - set(old_inputs)):
        result.inputs_added.append({"path": path, "sha256": new_inputs[path].sha256})
    for path in sorted(set(old_inputs) - set(new_inputs)):
        result.inputs_removed.append({"path": path, "sha256": old_inputs[path].sha256})
    for path in sorted(set(old_inputs) & set(new_inputs)):
        if old_inputs[path].sha256 != new_inputs[path].sha256:
            result.inputs_changed.append({"path": path, "old": old_inputs[path].sha256, "new": new_inputs[path].sha256})
    group_a = a.params["group"]
    for key, old, new in changes(a.params["values"], b.params["values"], group_a):
        result.params_changed.append(
            {"key": key, "old": None if old == ABSENT else old, "new": None if new == ABSENT else new}
        )
    for name in sorted(set(a.counters) | set(b.counters)):
        old_count = a.counters.get(name, 0)
        new_count = b.counters.get(name, 0)
        if old_count != new_count:
            result.counters_changed.append(
                {"name": name, "old": old_count, "new": new_count, "delta": new_count - old_count}
            )
    # Both directions: an output only A has is as much a difference as one only B has.
    old_outputs = {(entry.role, entry.path): entry for entry in a.outputs}
    new_outputs = {(entry.role, entry.path): entry for entry in b.outputs}
    for role, path in sorted(set(old_outputs) | set(new_outputs)):
        before, after = old_outputs.get((role, path)), new_outputs.get((role, path))
        if before is None or after is None or before.sha256 != after.sha256:
            result.outputs_changed.append(
                {
                    "role": role,
                    "path": path,
                    "old": before.sha256 if before else None,
                    "new": after.sha256 if after else None,
                }
            )
    for section, old_value, new_value in (
        ("policy", a.policy, b.policy),
        ("serialization", a.serialization, b.serialization),
    ):
        for key, old, new in changes(old_value, new_value, section):
            result.policy_changed.append(
                {"key": key, "old": None if old == ABSENT else old, "new": None if new == ABSENT else new}
            )
    if a.tool["version"] != b.tool["version"]:
        return ManifestDiff(**{**asdict(result), "tool_changed": {"old": a.tool["version"], "new": b.tool["version"]}})
    return result


def _parse(raw: bytes, label: str) -> Manifest:
    manifest, _ = parse_manifest(raw, label, InputError)
    return manifest


def _read_at(root: Path, path: str, rev: str) -> bytes:
    """A DVC-tracked (or git-tracked) file as it was at ``rev`` (a commit, branch, tag or experiment)."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        data = dvc.api.read(path, repo=str(root), rev=rev, mode="rb")
    except (DvcException, FileNotFoundError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read {path} at revision {rev!r}: {reason}",
            path=path,
            fix="check the revision or experiment name (`dvc exp show`), and that its "
            "outputs are in the cache or remote (`dvc pull`)",
        ) from None
    return data if isinstance(data, bytes) else str(data).encode("utf-8")


def _resolve(root: Path, spec: str, stages: Sequence[str]) -> dict[str, tuple[Manifest, str]]:
    """``stage -> (manifest, label)`` for a path, ``REV:PATH``, or ``REV`` (every manifest stage)."""
    as_path = root / spec
    if as_path.is_file():
        return {spec: (_parse(as_path.read_bytes(), spec), spec)}
    if ":" in spec:
        rev, _, path = spec.partition(":")
        if rev and path:
            return {path: (_parse(_read_at(root, path, rev), f"{rev}:{path}"), f"{rev}:{path}")}
    plans, _ = plan_stages(root, stages)
    if not plans:
        raise UsageError("no stage with a manifest to compare", path="dvc.yaml")
    return {
        plan.name: (_parse(_read_at(root, plan.manifests[0], spec), f"{spec}:{plan.manifests[0]}"), spec)
        for plan in plans
    }


def diff_builds(root: Path, a: str, b: str, stages: Sequence[str] = ()) -> list[ManifestDiff]:
    """Compare builds ``a`` and ``b``: manifest paths, ``REV:PATH``, or revisions/experiment names."""
    # A manifest path on one side and a revision on the other: the same path at that revision.
    a_is_file, b_is_file = (root / a).is_file(), (root / b).is_file()
    if a_is_file and not b_is_file and ":" not in b:
        b = f"{b}:{a}"
    elif b_is_file and not a_is_file and ":" not in a:
        a = f"{a}:{b}"
    left = _resolve(root, a, stages)
    right = _resolve(root, b, stages)
    if len(left) == 1 and len(right) == 1:
        ((stage_a, (manifest_a, label_a)),) = left.items()
        ((_, (manifest_b, label_b)),) = right.items()
        if manifest_a.kind != manifest_b.kind:
            raise UsageError(
                f"cannot compare a {manifest_a.kind} manifest with a {manifest_b.kind} one",
                fix="compare builds of the same stage",
            )
        return [diff_manifests(manifest_a, manifest_b, stage_a, label_a, label_b)]
    common = [stage for stage in left if stage in right]
    if not common:
        raise CorpusprovError(
            "the two builds share no stage to compare", fix="name a stage with --stage, or give REV:PATH on both sides"
        )
    return [diff_manifests(left[stage][0], right[stage][0], stage, left[stage][1], right[stage][1]) for stage in common]
