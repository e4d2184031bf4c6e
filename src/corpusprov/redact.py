"""What a manifest may say: credentials, home folders and environment values are redacted."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

__all__ = ["REDACTED", "redact_argv", "redact_text", "secret_env_values"]

REDACTED: Final = "<redacted>"

# user:password@ (or token@) in any URL.
_URL_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# key=value or key:value where the key names a secret.
_SECRET_ASSIGNMENT: Final = re.compile(
    r"(?i)(?P<key>[A-Za-z0-9_.-]*(?:token|secret|password|passwd|pwd|api[_-]?key|access[_-]?key|"
    r"auth|credential|signature|sig)[A-Za-z0-9_.-]*)(?P<sep>=|:)(?P<value>[^&\s,;]+)")
# Well-known credential shapes.
_KNOWN_SHAPES: Final = re.compile(
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"            # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b"          # GitHub tokens
    r"|\bxox[abpr]-[A-Za-z0-9-]{10,}\b"         # Slack tokens
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"  # JWTs
)
_SECRET_ENV_NAME: Final = re.compile(r"(?i)^(AWS_|AZURE_|GOOGLE_|GCP_|GH_|GITHUB_)|TOKEN|SECRET|PASSW|"
                                     r"API_?KEY|ACCESS_?KEY|CREDENTIAL|PRIVATE")
_SECRET_FLAGS: Final = re.compile(r"(?i)^--?[A-Za-z0-9-]*(token|secret|password|passwd|api-?key|"
                                  r"access-?key|credential)[A-Za-z0-9-]*$")


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


def redact_argv(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """The command line as the manifest may record it: the value after a secret flag goes too."""
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
        result.append(redact_text(arg, environ))
    return result
