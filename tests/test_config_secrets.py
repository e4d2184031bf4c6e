"""The committed DVC config holds no secrets; credentials live in the git-ignored .dvc/config.local."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Option names (any remote type) whose value is a credential or points at one.
SECRET_OPTIONS = frozenset(
    {
        "access_key_id",
        "secret_access_key",
        "session_token",  # s3
        "credentialpath",
        "configpath",  # s3, gs: credential files
        "password",
        "passphrase",
        "keyfile",
        "token",
        "bearer_token_command",
        "custom_auth_header",
        "key_path",  # ssh, http, webdav, webhdfs
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",  # azure
        "oss_key_id",
        "oss_key_secret",  # oss
        "gdrive_client_secret",
        "gdrive_user_credentials_file",
        "gdrive_service_account_json_file_path",  # gdrive
        "sse_customer_key",
        "kerb_ticket",
    }
)
#: Any other option whose name says it is secret (``ask_password = true`` is a switch, not a secret).
SECRET_NAME = re.compile(r"secret|password|passphrase|token|credential|private|(^|_)key$", re.IGNORECASE)
NOT_SECRET = frozenset({"ask_password", "ask_passphrase", "sse_kms_key_id"})
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")
AWS_SECRET_SHAPE = re.compile(
    r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])"
    r"(?=[A-Za-z0-9/+]*[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
)
EMBEDDED_SECRETS = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"AccountKey=|SharedAccessSignature=", re.IGNORECASE), "an Azure connection string secret"),
    (re.compile(r"[?&]sig=[^&\s]+"), "an Azure SAS signature"),
    (re.compile(r"X-Amz-Signature=|X-Amz-Credential=", re.IGNORECASE), "a presigned URL"),
)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _options(text: str) -> list[tuple[int, str, str, str]]:
    """``(line, section, key, value)`` for every option in a DVC (configobj-style) config."""
    options = []
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = _unquote(line.strip("[]").strip())
            continue
        key, sep, value = line.partition("=")
        if sep:
            options.append((number, section, key.strip(), _unquote(value.strip())))
    return options


def secret_findings(text: str) -> list[str]:
    """Each option in a DVC config that looks like it holds a secret, as ``line N: [section] key: why``."""
    findings = []
    for number, section, key, value in _options(text):
        where = f"line {number}: [{section}] {key}"
        name = key.lower()
        if not value:
            continue
        if name in SECRET_OPTIONS or (name not in NOT_SECRET and SECRET_NAME.search(name)):
            findings.append(f"{where}: a credential option; set it with `dvc remote modify --local`")
            continue
        if URL_WITH_PASSWORD.search(value):
            findings.append(f"{where}: a URL with user:password@; put the password in .dvc/config.local")
            continue
        if AWS_ACCESS_KEY_ID.search(value) or AWS_SECRET_SHAPE.search(value):
            findings.append(f"{where}: an AWS-key-shaped value")
            continue
        for pattern, what in EMBEDDED_SECRETS:
            if pattern.search(value):
                findings.append(f"{where}: {what}")
                break
    return findings


def ignores_config_local(gitignore: str) -> bool:
    """Whether a ``.dvc/.gitignore`` keeps ``config.local`` (and so its credentials) out of git."""
    ignored = False
    for raw in gitignore.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").lstrip("/")
        if fnmatch.fnmatchcase("config.local", pattern):
            ignored = not negated
    return ignored


def test_committed_dvc_config_has_no_secrets() -> None:
    config = (REPO_ROOT / ".dvc" / "config").read_text(encoding="utf-8")
    assert _options(config), "no options parsed from .dvc/config: the checker would pass anything"
    assert secret_findings(config) == []


def test_config_local_is_git_ignored() -> None:
    assert ignores_config_local((REPO_ROOT / ".dvc" / ".gitignore").read_text(encoding="utf-8"))


def test_default_remote_is_the_local_folder() -> None:
    options = {
        (section, key): value
        for _, section, key, value in _options((REPO_ROOT / ".dvc" / "config").read_text(encoding="utf-8"))
    }
    assert options[("core", "remote")] == "local"
    # No URL in git: a relative one is resolved per git revision (tags, experiments) by DVC.
    assert not [key for (section, key) in options if section.startswith("remote") and key == "url"]


SECTION = "['remote \"team\"']\n"


@pytest.mark.parametrize(
    "config",
    [
        SECTION + "    url = s3://bucket/path\n    access_key_id = AKIAIOSFODNN7EXAMPLE\n",
        SECTION + "    url = s3://bucket/path\n    secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        SECTION + "    url = s3://bucket/path\n    session_token = FwoGZXIvYXdzEJr\n",
        SECTION + "    url = s3://bucket/path\n    credentialpath = /home/me/.aws/credentials\n",
        SECTION + "    url = ssh://me@host/srv/dvc\n    password = hunter2\n",
        SECTION + "    url = ssh://me@host/srv/dvc\n    passphrase = correct horse\n",
        SECTION + "    url = ssh://me@host/srv/dvc\n    keyfile = ~/.ssh/id_ed25519\n",
        SECTION + "    url = https://example.org/dvc\n    token = ghp_0123456789abcdef\n",
        SECTION + "    url = azure://container/path\n    account_key = bXlrZXk=\n",
        SECTION + "    url = azure://container/path\n    sas_token = sv=2022-11-02&sig=abc\n",
        SECTION + "    url = azure://container/path\n    connection_string = AccountName=a;Key=b\n",
        SECTION + "    url = azure://container/path\n    client_secret = s3cr3t\n",
        SECTION + "    url = oss://bucket/path\n    oss_key_secret = s3cr3t\n",
        SECTION + "    url = gs://bucket/path\n    credentialpath = project-123.json\n",
        SECTION + "    url = gdrive://root/dvc\n    gdrive_client_secret = s3cr3t\n",
        SECTION + "    url = gdrive://root/dvc\n    gdrive_service_account_json_file_path = sa.json\n",
        SECTION + "    url = https://user:hunter2@example.org/dvc\n",
        SECTION + "    url = ssh://me:hunter2@host:2222/srv/dvc\n",
        SECTION + "    url = s3://bucket/path\n    endpointurl = http://AKIAIOSFODNN7EXAMPLE.example.org\n",
        SECTION + "    url = s3://bucket/path\n    profile = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        SECTION + "    url = https://acct.blob.core.windows.net/c?sv=2022&sig=abcdef\n",
        SECTION + "    url = azure://c/p\n    account_name = DefaultEndpointsProtocol=https;AccountKey=abc\n",
        SECTION + "    url = s3://bucket/path\n    my_api_token = abc\n",
        SECTION + "    url = s3://bucket/path\n    ACCESS_KEY_ID = AKIAIOSFODNN7EXAMPLE\n",
    ],
    ids=lambda config: config.splitlines()[-1].split("=")[0].strip(),
)
def test_checker_flags_secret_looking_values(config: str) -> None:
    findings = secret_findings("[core]\n    remote = team\n" + config)
    assert len(findings) == 1, findings
    assert findings[0].startswith(f"line {len(config.splitlines()) + 2}:")


@pytest.mark.parametrize(
    "config",
    [
        (REPO_ROOT / ".dvc" / "config").read_text(encoding="utf-8"),
        SECTION + "    url = s3://bucket/path\n    endpointurl = http://127.0.0.1:8333\n    region = us-east-1\n",
        SECTION + "    url = s3://bucket/path\n    profile = team-dvc\n    sse_kms_key_id = alias/dvc\n",
        SECTION + "    url = ssh://me@host:2222/srv/dvc\n    ask_password = true\n    port = 2222\n",
        SECTION + "    url = gs://bucket/path\n    projectname = corpus-123\n",
        SECTION + "    url = azure://container/path\n    account_name = mystorage\n",
        # A git commit id is 40 characters too, but all lowercase hex: not an AWS secret.
        SECTION + "    url = ../../remote\n    # rev 3f786850e387550fdab836ed7e6dc881de23001b\n",
        "[core]\n    remote = local\n# secrets go in .dvc/config.local (password, token, keyfile)\n",
        SECTION + "    url = s3://bucket/path\n    password =\n",
    ],
    ids=[
        "repository",
        "s3-endpoint",
        "s3-profile",
        "ssh-ask-password",
        "gs",
        "azure-account",
        "git-sha",
        "comment",
        "empty-value",
    ],
)
def test_checker_accepts_configs_without_secrets(config: str) -> None:
    assert secret_findings(config) == []


@pytest.mark.parametrize(
    ("gitignore", "ignored"),
    [
        ("/config.local\n/tmp\n/cache\n", True),
        ("config.local\n", True),
        ("/config.*\n", True),
        ("/cache\n/plots\n", False),
        ("/config.local\n!/config.local\n", False),
        ("# /config.local\n", False),
    ],
)
def test_gitignore_check(gitignore: str, ignored: bool) -> None:
    assert ignores_config_local(gitignore) is ignored
