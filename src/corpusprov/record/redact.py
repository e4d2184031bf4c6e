"""What a manifest may say: credentials, home folders and environment values are redacted."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "OUTSIDE_REPO",
    "REDACTED",
    "recorded_path",
    "redact_argv",
    "redact_document",
    "redact_text",
    "secret_env_values",
]

REDACTED: Final = "<redacted>"
#: How a manifest names a path outside the repository (only possible with --allow-outside-repo):
#: where it was is nobody else's business, and no reader may open it.
OUTSIDE_REPO: Final = "<outside-repo>"

# user:password@ (or token@) in any URL.
_URL_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# key=value or key:value where the key names a secret.
_SECRET_ASSIGNMENT: Final = re.compile(
    r"(?i)(?P<key>[A-Za-z0-9_.-]*(?:token|secret|password|passwd|pwd|api[_-]?key|access[_-]?key|"
    r"auth|credential|signature|sig)[A-Za-z0-9_.-]*)(?P<sep>=|:)(?P<value>[^&\s,;]+)"
)
# Well-known credential shapes.
_KNOWN_SHAPES: Final = re.compile(
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b"  # GitHub tokens
    r"|\bxox[abpr]-[A-Za-z0-9-]{10,}\b"  # Slack tokens
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"  # JWTs
)
_SECRET_ENV_NAME: Final = re.compile(
    r"(?i)^(AWS_|AZURE_|GOOGLE_|GCP_|GH_|GITHUB_)|TOKEN|SECRET|PASSW|"
    r"API_?KEY|ACCESS_?KEY|CREDENTIAL|PRIVATE"
)
_SECRET_FLAGS: Final = re.compile(
    r"(?i)^--?[A-Za-z0-9-]*(token|secret|password|passwd|api-?key|"
    r"access-?key|credential)[A-Za-z0-9-]*$"
)


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret (long enough to matter)."""
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items() if _SECRET_ENV_NAME.search(name) and len(value) >= 6}
    return sorted(values, key=len, reverse=True)


def _home_folders(environ: Mapping[str, str]) -> list[str]:
    folders = {str(Path.home())}
    if environ.get("HOME"):
        folders.add(environ["HOME"])
    return sorted((folder for folder in folders if folder not in ("", "/")), key=len, reverse=True)


def redact_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with credentials, secret env values and home folders replaced."""
    environ = os.environ if environ is None else environ
    for value in secret_env_values(environ):
        text = text.replace(value, REDACTED)
    text = _URL_USERINFO.sub(lambda match: f"{match['scheme']}{REDACTED}@", text)
    text = _SECRET_ASSIGNMENT.sub(lambda match: f"{match['key']}{match['sep']}{REDACTED}", text)
    text = _KNOWN_SHAPES.sub(REDACTED, text)
    for home in _home_folders(environ):
        # Only whole path components: /home/alice must not eat /home/alice2.
        text = re.sub(re.escape(home) + r"(?=/|$|[^\w.-])", "~", text)
    return text


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "~", "..")) or "/../" in value or value.endswith("/..") or "\\" in value


def _argv_value(value: str, base: str, environ: Mapping[str, str]) -> str:
    """One command-line value: a path that leaves ``base`` (the repository) is never recorded as such."""
    if not _looks_like_path(value):
        return value
    # normpath, not resolve(): the recorded form must not depend on links on this machine.
    absolute = os.path.normpath(Path(base) / Path(value).expanduser())
    relative = Path(os.path.relpath(absolute, base)).as_posix()
    if relative == "." or not relative.startswith(".."):
        return relative
    # Outside the repository: under the home folder it reads ~/..., which names no user.
    for home in _home_folders(environ):
        if absolute == home:
            return "~"
        if absolute.startswith(home + "/"):
            return "~/" + Path(os.path.relpath(absolute, home)).as_posix()
    return recorded_path(relative, environ)


def redact_argv(argv: Sequence[str], environ: Mapping[str, str] | None = None, base: Path | None = None) -> list[str]:
    """The command line as the manifest may record it.

    Paths become repo-relative (``<outside-repo>/NAME`` when they leave the repository),
    whether written as a separate argument or as ``--option=PATH``; credentials and home
    folders are redacted; the value after a secret-named flag goes too.
    """
    where = os.path.abspath(base or Path.cwd())
    environ = os.environ if environ is None else environ
    result: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            result.append(REDACTED)
            hide_next = False
            continue
        if _SECRET_FLAGS.match(arg):
            result.append(arg)
            hide_next = True
            continue
        flag, equals, value = arg.partition("=")
        if equals and flag.startswith("-"):
            if _SECRET_FLAGS.match(flag):
                result.append(f"{flag}={REDACTED}")
                continue
            arg = f"{flag}={_argv_value(value, where, environ)}"
        else:
            arg = _argv_value(arg, where, environ)
        result.append(redact_text(arg, environ))
    return result


def recorded_path(path: str, environ: Mapping[str, str] | None = None) -> str:
    """A path as a manifest may record it: repo-relative, or ``<outside-repo>/NAME`` when it leaves."""
    from corpusprov.prove.dvcfiles import is_repo_relative

    if is_repo_relative(path):
        return path
    name = path.replace("\\", "/").rstrip("/").rpartition("/")[2]
    # The name of a home folder is a user name.
    homes = {Path(home).name for home in _home_folders(os.environ if environ is None else environ)}
    if name in ("", ".", "..", "~") or name in homes:
        return OUTSIDE_REPO
    return f"{OUTSIDE_REPO}/{name}"


def _recorded(value: Any) -> Any:
    if isinstance(value, str):
        return recorded_path(value)
    if isinstance(value, list):
        return [_recorded(item) for item in value]
    return value


def redact_document(document: dict[str, Any]) -> dict[str, Any]:
    """A manifest document with every path field and the argv as the redaction rules allow.

    Applied to the whole document as it is written, so a new path field or a new spelling
    on the command line cannot slip past a redaction done field by field upstream.
    """
    result = dict(document)
    command = dict(result.get("command") or {})
    if "args" in command:
        command["args"] = {name: _recorded(value) for name, value in command["args"].items()}
    if "argv" in command:
        command["argv"] = redact_argv(command["argv"])
    result["command"] = command
    result["inputs"] = [
        {
            **record,
            "path": recorded_path(record["path"]),
            "arg": recorded_path(record["arg"]),
            **(
                {"upstream_manifest": {**upstream, "path": recorded_path(upstream["path"])}}
                if isinstance(upstream := record.get("upstream_manifest"), dict)
                else {}
            ),
        }
        for record in result.get("inputs", [])
    ]
    result["input_folders"] = [
        {**folder, "path": recorded_path(folder["path"])} for folder in result.get("input_folders", [])
    ]
    result["outputs"] = [{**entry, "path": recorded_path(entry["path"])} for entry in result.get("outputs", [])]
    params = result.get("params")
    if isinstance(params, dict) and isinstance(params.get("path"), str):
        result["params"] = {**params, "path": recorded_path(params["path"])}
    if isinstance(result.get("overrides"), list):
        result["overrides"] = [
            {**item, "input": recorded_path(item["input"])}
            if isinstance(item, dict) and isinstance(item.get("input"), str)
            else item
            for item in result["overrides"]
        ]
    return result
