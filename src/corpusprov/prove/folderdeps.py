"""Folder deps: a folder's files as DVC lists them, against the shards (and sidecars) a stage read."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from corpusprov.io.inputs import dvc_dir_md5
from corpusprov.prove.dvcignore import dvc_folder_files
from corpusprov.prove.findings import CAUSE_LOCK_EDITED, CAUSE_STRAY_OUTPUT, Checker
from corpusprov.record.manifest import InputRecord

__all__ = [
    "expected_folder_md5",
    "explain_folder",
    "extras_explain",
    "folder_entries",
    "output_folders",
    "stray_files",
]

_DIR_MD5: Final = re.compile(r"^[0-9a-f]{32}\.dir$")


def folder_entries(members: list[InputRecord]) -> list[tuple[str, str]]:
    """A folder's ``(relpath, md5)`` as DVC lists it: the shards read, and the manifests beside them."""
    return [entry for record in members for entry in record.dvc_listing()]


def stray_files(check: Checker, folder: str, listed: set[str]) -> list[str]:
    """Files DVC hashes into ``folder`` (its .dvcignore filter) beyond ``listed``; kept in ``check.extras``."""
    strays = sorted(set(dvc_folder_files(check.root, folder) or ()) - listed)
    for relpath in strays:
        check.extras.setdefault(folder, {})[relpath] = f"{folder}/{relpath}"
    return strays


def extras_explain(check: Checker, folder: str, entries: list[tuple[str, str]], dep: dict[str, Any]) -> bool:
    """True when dvc.lock's folder md5 is ``entries`` (the manifest's files) plus the stray files on disk."""
    extras = check.extras.get(folder)
    if not extras:
        return False
    entries = list(entries)
    for relpath, where in extras.items():
        digest = check.digest(where)
        if digest is None:
            return False
        entries.append((relpath, digest.md5))
    return dvc_dir_md5(entries) == dep.get("md5")


def explain_folder(check: Checker, folder: str, dep: dict[str, Any], by_path: dict[str, Any]) -> None:
    """Where DVC's cached ``.dir`` listing is at hand, name the file that differs."""
    md5 = str(dep.get("md5", ""))
    if not _DIR_MD5.match(md5):  # a lock's md5 names a cache file: never let it name a path
        return
    listing_path = check.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    if not listing_path.is_file():
        return
    try:
        listing = json.loads(listing_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(listing, list):
        return
    stray = set(check.extras.get(folder, {}))
    members = [record for record in by_path.values() if record.arg == folder]
    known = {f"{folder}/{name}": md5 for name, md5 in folder_entries(members)}
    for item in listing:
        if not isinstance(item, dict):
            continue
        if item.get("relpath") in stray:
            continue  # reported as an extra file in the folder
        path = f"{folder}/{item.get('relpath')}"
        recorded = known.get(path)
        check.checks += 1
        if recorded is None:
            check.add("dvc.lock folder listing", "in the manifest", "not read by the stage", path, CAUSE_LOCK_EDITED)
        elif recorded != item.get("md5"):
            check.add(
                "input md5 (dvc.lock .dir listing vs manifest)", recorded, item.get("md5"), path, CAUSE_LOCK_EDITED
            )


def output_folders(
    outs: Any, outputs: list[tuple[str, str]]
) -> list[tuple[str, dict[str, Any], list[tuple[str, str]]]]:
    """Outputs ``(path, md5)`` grouped by the dvc.lock folder out that holds them: (folder, entry, [(relpath, md5)])."""
    folders: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {}
    for path, md5 in outputs:
        for entry in outs or []:
            folder = str(entry.get("path", "")).rstrip("/") if isinstance(entry, dict) else ""
            if folder and path.startswith(folder + "/"):
                folders.setdefault(folder, (entry, []))[1].append((path[len(folder) + 1 :], md5))
                break
    return [(folder, entry, members) for folder, (entry, members) in sorted(folders.items())]


def expected_folder_md5(check: Checker, folder: str, entry: dict[str, Any], members: list[tuple[str, str]]) -> str:
    """The ``.dir`` md5 dvc.lock should hold for an output folder; a file the stage did not write is a finding.

    When dvc.lock hashed the stray files too (a ``dvc commit`` after they appeared), its md5 is
    expected as it is: the stray file is reported, dvc.lock was not edited.
    """
    check.checks += 1
    for relpath in stray_files(check, folder, {relpath for relpath, _ in members}):
        check.add(
            "output folder listing",
            "only the stage's outputs",
            f"extra file {relpath}",
            f"{folder}/{relpath}",
            CAUSE_STRAY_OUTPUT,
        )
    if extras_explain(check, folder, members, entry):
        return str(entry.get("md5"))
    return dvc_dir_md5(members)
