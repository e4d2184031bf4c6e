"""What a manifest may say: no home folders, user or host names, environment values or credentials.

The acceptance test runs the real CLI in a subprocess from a working directory inside a home
folder named after a user, with absolute paths on the command line, AWS and token secrets in
the environment, a token URL in the git remote and in a params comment, and then greps the
bytes of every file the run wrote besides the corpus. The redaction functions get a table of
credential shapes; paths that leave the repository are refused unless explicitly allowed.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from corpusprov.record.manifest import accounting_problems, load_manifest
from corpusprov.record.redact import REDACTED, redact_argv, redact_text
from corpusprov.sample import generate_samples
from corpusprov.stages.run import StageRequest, run_merge
from tests.conftest import REPO_ROOT, Cli, encode_row, run, write_jsonl

USER = "alice-secret-user"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 -- AWS's documented fake key
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
URL_TOKEN = "s3cr3tT0ken"  # noqa: S105 -- a fake the manifest must not contain
TOKEN_URL = f"https://user:{URL_TOKEN}@example.invalid/repo"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def _word(text: str) -> re.Pattern[bytes]:
    """``text`` as a whole word (a two-letter host name must not match inside ``vmaf``)."""
    return re.compile(rb"(?<![A-Za-z0-9_])" + re.escape(text.encode()) + rb"(?![A-Za-z0-9_])")


def assert_clean(data: bytes, where: str, forbidden: dict[str, str]) -> None:
    for what, text in forbidden.items():
        assert text.encode() not in data, f"{where} contains the {what} ({text!r})"


# --------------------------------------------------------------------------- the acceptance test


@pytest.fixture
def home_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A git work tree inside a home folder named after the user, with sample shards and params."""
    home = tmp_path / "home" / USER
    work = home / "projects" / "corpus"
    work.mkdir(parents=True)
    generate_samples(work / "data", seed=0, rows=120)
    params = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8")
    (work / "params.yaml").write_text(
        f"# mirror of the shards: {TOKEN_URL} (key {AWS_SECRET})\n" + params, encoding="utf-8"
    )
    run(["git", "init", "-q", "-b", "main"], work)
    run(["git", "remote", "add", "origin", TOKEN_URL], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-q", "-m", "shards"], work)
    return home, work


def test_manifest_holds_no_home_user_host_env_or_credentials(home_repo: tuple[Path, Path]) -> None:
    home, work = home_repo
    env = {
        "HOME": str(home),
        "USER": USER,
        "LOGNAME": USER,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "DVC_REMOTE_URL": TOKEN_URL,
        "GITHUB_TOKEN": GITHUB_TOKEN,
    }
    runs = {
        "merge": [
            "corpusprov",
            "merge",
            str(work / "data" / "encode"),
            "--output",
            str(work / "out" / "merged.jsonl"),
            "--manifest-out",
            str(work / "out" / "merged.manifest.json"),
            "--metrics-out",
            str(work / "metrics" / "merge.json"),
            "--params",
            str(work / "params.yaml"),
        ],
        "aggregate": [
            "corpusprov",
            "aggregate",
            str(work / "data" / "mos" / "lsvq.jsonl"),
            str(work / "data" / "mos" / "live-vqa.jsonl"),
            "--output",
            str(work / "out" / "unified.jsonl"),
            "--metrics-out",
            str(work / "metrics" / "aggregate.json"),
            "--params",
            str(work / "params.yaml"),
        ],
    }
    forbidden = {
        "home folder": str(home),
        "user name": USER,
        "AWS secret": AWS_SECRET,
        "AWS key id": AWS_KEY_ID,
        "URL token": URL_TOKEN,
        "GitHub token": GITHUB_TOKEN,
        "working directory": str(work),
        "temp folder": str(home.parent.parent),
    }
    written: dict[str, bytes] = {}
    for argv in runs.values():
        done = run(argv, work, env=env)
        assert done.returncode == 0, done.stderr
        for path in [*(work / "out").iterdir(), *(work / "metrics").iterdir()]:
            if path.suffix == ".json" or path.name.endswith(".rejects.jsonl"):
                written[path.name] = path.read_bytes()
    assert {
        "merged.manifest.json",
        "merged.rejects.jsonl",
        "merge.json",
        "unified.jsonl.manifest.json",
        "unified.rejects.jsonl",
        "aggregate.json",
    } <= set(written)
    assert written["merged.rejects.jsonl"], "the merge should have rejected a row (rejects carry paths)"

    host = socket.gethostname()
    local_user = getpass.getuser()
    for name, data in written.items():
        assert_clean(data, name, forbidden)
        assert _word(host).search(data) is None, f"{name} contains the host name {host!r}"
        assert _word(local_user).search(data) is None, f"{name} contains the user name {local_user!r}"

    # The manifest still says what ran: repo-relative paths, in argv and in the parsed args.
    manifest, document = load_manifest(work / "out" / "merged.manifest.json", "merged.manifest.json")
    assert accounting_problems(manifest) == []
    assert document["command"]["argv"] == [
        "corpusprov",
        "merge",
        "data/encode",
        "--output",
        "out/merged.jsonl",
        "--manifest-out",
        "out/merged.manifest.json",
        "--metrics-out",
        "metrics/merge.json",
        "--params",
        "params.yaml",
    ]
    assert document["command"]["args"]["inputs"] == ["data/encode"]
    assert [record.path for record in manifest.inputs] == [
        "data/encode/grid-host-a.jsonl",
        "data/encode/grid-host-b.jsonl",
        "data/encode/grid-host-c.jsonl",
    ]
    assert document["provenance"]["git"]["commit"]


def test_argv_secrets_are_redacted_in_the_manifest_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI cannot carry arbitrary argv, so drive the stage with the argv a wrapper might record."""
    home = tmp_path / "home" / USER
    work = home / "w"
    write_jsonl(work / "data" / "a.jsonl", [encode_row(crf=20), encode_row(crf=21)])
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    argv = (
        "corpusprov",
        "merge",
        str(work / "data" / "a.jsonl"),
        "--output",
        "out/m.jsonl",
        f"--remote={TOKEN_URL}",
        "--token",
        "abc123xyz",
        "--api-key=xyz789",
        "password=hunter2",
        f"--header=Authorization:{GITHUB_TOKEN}",
        f"--jwt-bearer={JWT}",
        f"--aws={AWS_SECRET}",
        f"s3://{AWS_KEY_ID}@bucket/key",
        str(home / "notes.txt"),
    )
    report = run_merge(StageRequest(inputs=(str(work / "data" / "a.jsonl"),), output=Path("out/m.jsonl"), argv=argv))
    data = (work / "out" / "m.jsonl.manifest.json").read_bytes()
    assert_clean(
        data,
        "manifest",
        {
            "URL token": URL_TOKEN,
            "--token value": "abc123xyz",
            "api key": "xyz789",
            "password": "hunter2",
            "GitHub token": GITHUB_TOKEN,
            "JWT": JWT,
            "AWS secret": AWS_SECRET,
            "AWS key id": AWS_KEY_ID,
            "home folder": str(home),
            "user name": USER,
            "temp folder": str(tmp_path),
        },
    )
    recorded = report.manifest.command["argv"]
    assert recorded[:5] == ["corpusprov", "merge", "data/a.jsonl", "--output", "out/m.jsonl"]
    assert recorded[-1] == "~/notes.txt"
    assert "--token" in recorded and "https://<redacted>@example.invalid/repo" in " ".join(recorded)


# --------------------------------------------------------------------------- redaction units

ENV = {
    "HOME": "/home/alice",
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "MY_SERVICE_TOKEN": "Zq8v-unusual-value",
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
}


@pytest.mark.parametrize(
    ("argv", "secret", "kept"),
    [
        (["https://user:pw@host/x"], "user:pw", "https://<redacted>@host/x"),
        (["git+https://ghuser:s3cr3tT0ken@github.com/org/repo.git"], "s3cr3tT0ken", "@github.com/org/repo.git"),
        (["--remote", "s3://AKIAIOSFODNN7EXAMPLE@bucket/path"], "AKIAIOSFODNN7EXAMPLE", "bucket/path"),
        (["--key-id", "ASIAIOSFODNN7EXAMPLE"], "ASIAIOSFODNN7EXAMPLE", "--key-id"),
        (["--token", "abc123"], "abc123", "--token"),
        (["--token=abc123"], "abc123", "--token="),
        (["--api-key=xyz"], "xyz", "--api-key="),
        (["--api-key", "xyz"], "xyz", "--api-key"),
        (["--password", "hunter2"], "hunter2", "--password"),
        (["password=hunter2"], "hunter2", "password="),
        (["--db=postgres://bob:hunter2@db.internal/x"], "hunter2", "db.internal/x"),
        (["https://example.invalid/x?access_token=tok987654&page=2"], "tok987654", "page=2"),
        (["--header", f"Authorization: token {GITHUB_TOKEN}"], GITHUB_TOKEN, "--header"),
        ([f"--note={GITHUB_TOKEN}"], GITHUB_TOKEN, "--note="),
        (["--slack", "xoxb-1234567890-abcdefghij"], "xoxb-1234567890-abcdefghij", "--slack"),
        (["--bearer", JWT], JWT, "--bearer"),
        ([f"--secret-value-inside=prefix{AWS_SECRET}suffix"], AWS_SECRET, "--secret-value-inside="),
        (["--label", "run-with-Zq8v-unusual-value-inside"], "Zq8v-unusual-value", "run-with-"),
        (["/home/alice/data/shard.jsonl"], "/home/alice", "~/data/shard.jsonl"),
        (["--params=/home/alice/p.yaml"], "/home/alice", "--params=~/p.yaml"),
    ],
)
def test_redact_argv_hides_credentials(argv: list[str], secret: str, kept: str) -> None:
    redacted = redact_argv(["corpusprov", "merge", *argv], ENV)
    joined = " ".join(redacted)
    assert secret not in joined, redacted
    assert kept in joined, redacted
    assert redacted[:2] == ["corpusprov", "merge"]
    assert len(redacted) == len(argv) + 2


@pytest.mark.parametrize(
    "text",
    [
        "https://user:pw@host/x",
        f"s3://{AWS_KEY_ID}@bucket",
        "password=hunter2",
        GITHUB_TOKEN,
        JWT,
        f"value {AWS_SECRET} inside",
        "/home/alice/x",
    ],
)
def test_redact_text_hides_credentials(text: str) -> None:
    redacted = redact_text(text, ENV)
    assert redacted != text
    for secret in ("pw@", AWS_KEY_ID, "hunter2", GITHUB_TOKEN, JWT, AWS_SECRET, "/home/alice"):
        assert secret not in redacted
    assert REDACTED in redacted or redacted.startswith("~")


@pytest.mark.parametrize(
    "argv",
    [
        [
            "corpusprov",
            "merge",
            "data/raw/encode",
            "--output",
            "data/merged/encode_grid.jsonl",
            "--params",
            "params.yaml",
            "--metrics-out",
            "metrics/merge.json",
        ],
        [
            "corpusprov",
            "aggregate",
            "data/raw/mos",
            "--output",
            "data/unified/mos_unified.jsonl",
            "--allow-outside-repo",
            "--rejects-out",
            "shared/rejects.jsonl",
        ],
        ["corpusprov", "merge", "data/encode/tokenizer-grid.jsonl", "--output", "out/author-keys.jsonl"],
    ],
)
def test_redact_argv_leaves_ordinary_arguments_alone(argv: list[str]) -> None:
    assert redact_argv(argv, ENV) == argv


def test_home_folder_is_replaced_only_at_a_path_boundary() -> None:
    # /home/alice2 is someone else's folder, not "~2".
    redacted = redact_text("/home/alice2/data/x.jsonl", ENV)
    assert "~2" not in redacted, redacted


# --------------------------------------------------------------------------- paths that leave the repository


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, Path]:
    work = tmp_path / "work"
    write_jsonl(work / "data" / "a.jsonl", [encode_row(crf=20)])
    shard = write_jsonl(tmp_path / "elsewhere" / "shard.jsonl", [encode_row(crf=21), encode_row(crf=22)])
    return work, shard


def _cli(work: Path) -> Cli:
    return Cli(CliRunner(), work)


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["../elsewhere/shard.jsonl", "--output", "out/m.jsonl"], "input"),
        (["{abs}", "--output", "out/m.jsonl"], "input"),
        (["data/a.jsonl", "--output", "../elsewhere/m.jsonl"], "output"),
        (["data/a.jsonl", "--output", "out/m.jsonl", "--manifest-out", "../m.manifest.json"], "manifest-out"),
        (["data/a.jsonl", "--output", "out/m.jsonl", "--rejects-out", "../r.jsonl"], "rejects-out"),
        (["data/a.jsonl", "--output", "out/m.jsonl", "--metrics-out", "../metrics.json"], "metrics-out"),
        (["data/a.jsonl", "--output", "out/m.jsonl", "--params", "../elsewhere/params.yaml"], "params"),
    ],
)
def test_paths_outside_the_repository_are_refused(outside: tuple[Path, Path], args: list[str], what: str) -> None:
    work, shard = outside
    (shard.parent / "params.yaml").write_text("merge: {}\n", encoding="utf-8")
    before = sorted(path.relative_to(work.parent) for path in work.parent.rglob("*"))
    result = _cli(work)("merge", *[arg.replace("{abs}", str(shard)) for arg in args])
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("corpusprov: error: ../"), result.stderr
    assert f"{what} path is outside the repository" in lines[0]
    assert "--allow-outside-repo" in lines[0]
    assert str(work.parent) not in lines[0], "the message should name the path relative to the repository"
    assert sorted(path.relative_to(work.parent) for path in work.parent.rglob("*")) == before


@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_allow_outside_repo_records_no_path_outside_the_repository(outside: tuple[Path, Path], form: str) -> None:
    # Readers refuse `../` and absolute paths (a manifest is untrusted input), so the writer
    # records a path outside the repository as <outside-repo>/NAME: valid, and never opened.
    work, shard = outside
    arg = "../elsewhere/shard.jsonl" if form == "relative" else str(shard)
    done = run(["corpusprov", "merge", arg, "--output", "out/m.jsonl", "--allow-outside-repo"], work, check=False)
    assert done.returncode == 0, done.stderr
    data = (work / "out" / "m.jsonl.manifest.json").read_bytes()
    manifest, document = load_manifest(work / "out" / "m.jsonl.manifest.json", "m.jsonl.manifest.json")
    assert [(record.path, record.arg) for record in manifest.inputs] == [("<outside-repo>/shard.jsonl",) * 2]
    assert document["command"]["args"]["inputs"] == ["<outside-repo>/shard.jsonl"]
    assert str(work.parent) not in data.decode(), _absolute_strings(document, str(work.parent))
    assert "elsewhere" not in data.decode()


def _absolute_strings(value: Any, prefix: str) -> list[str]:
    """Where absolute paths sit in a manifest (for the failure message)."""
    found: list[str] = []
    if isinstance(value, str) and prefix in value:
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(_absolute_strings(item, prefix))
    elif isinstance(value, list):
        for item in value:
            found.extend(_absolute_strings(item, prefix))
    return found


def _params_with_overrides(block: str) -> str:
    params = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8")
    assert "  overrides: {}\n" in params
    return params.replace("  overrides: {}\n", f"  overrides:\n{block}")


@pytest.mark.parametrize("key", ["../elsewhere.jsonl", "/abs/x.jsonl", "~/x.jsonl", "data/../../x.jsonl", ".."])
@pytest.mark.parametrize("allow", [False, True], ids=["default", "allow-outside-repo"])
def test_overrides_that_leave_the_repository_are_params_errors(tmp_path: Path, key: str, allow: bool) -> None:
    work = tmp_path / "work"
    generate_samples(work / "data", seed=0, rows=30)
    text = _params_with_overrides(f"    {json.dumps(key)}: lsvq\n")
    (work / "params.yaml").write_text(text, encoding="utf-8")
    line = next(number for number, content in enumerate(text.splitlines(), 1) if json.dumps(key) in content)
    args = ["aggregate", "data/mos", "--output", "out/u.jsonl", "--params", "params.yaml"]
    result = _cli(work)(*args, *(["--allow-outside-repo"] if allow else []))
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"corpusprov: error: params.yaml:{line}:5: aggregate.overrides."), lines[0]
    assert "leaves the repository" in lines[0]
    assert not (work / "out").exists()


# --------------------------------------------------------------------------- every field, every spelling


def _strings(value: Any) -> list[str]:
    """Every string in a JSON document (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


@pytest.fixture
def homed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A repository outside the home folder, and a home folder (named after the user) holding shards."""
    home = tmp_path / "home" / USER
    write_jsonl(home / "data" / "x.jsonl", [encode_row(crf=30)])
    work = tmp_path / "work"
    write_jsonl(work / "in" / "a.jsonl", [encode_row(crf=20)])
    monkeypatch.setenv("HOME", str(home))
    return work, home


@pytest.mark.parametrize(
    "form",
    [
        ["--output={work}/out/m.jsonl"],
        ["--output", "{work}/out/m.jsonl"],
        ["-o", "{work}/out/m.jsonl"],
        ["--output=out/m.jsonl", "--rejects-out={work}/out/r.jsonl"],
        ["--output=./out/../out/m.jsonl"],
    ],
)
def test_absolute_paths_in_any_spelling_are_recorded_relative(homed: tuple[Path, Path], form: list[str]) -> None:
    work, _ = homed
    args = [arg.replace("{work}", str(work)) for arg in form]
    done = run(["corpusprov", "merge", str(work / "in" / "a.jsonl"), *args], work, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads((work / "out" / "m.jsonl.manifest.json").read_bytes())
    leaks = [text for text in _strings(document) if str(work) in text or text.startswith("/")]
    assert leaks == [], leaks


@pytest.mark.parametrize(
    "spelling",
    ["../home/{user}/data/x.jsonl", "{home}/data/x.jsonl", "~/data/x.jsonl", "in/../../home/{user}/data/x.jsonl"],
)
@pytest.mark.parametrize("as_option", [False, True], ids=["input", "--output="])
def test_allow_outside_repo_under_home_names_no_user(homed: tuple[Path, Path], spelling: str, as_option: bool) -> None:
    work, home = homed
    path = spelling.replace("{user}", USER).replace("{home}", str(home))
    if path.startswith("~"):
        path = str(home) + path[1:]  # the shell expands ~; corpusprov sees the result
    if as_option:
        args = [
            "in/a.jsonl",
            f"--output={path.replace('data/x.jsonl', 'out/m.jsonl')}",
            "--manifest-out",
            "out/m.manifest.json",
        ]
    else:
        args = [path, "--output", "out/m.jsonl", "--manifest-out", "out/m.manifest.json"]
    done = run(["corpusprov", "merge", *args, "--allow-outside-repo"], work, check=False)
    assert done.returncode == 0, done.stderr
    data = (work / "out" / "m.manifest.json").read_bytes()
    document = json.loads(data)
    assert USER.encode() not in data, [text for text in _strings(document) if USER in text]
    assert str(work.parent).encode() not in data
    assert not [text for text in _strings(document) if text.startswith("../")]
    load_manifest(work / "out" / "m.manifest.json", "m.manifest.json")  # still valid


_PATH_TAILS = st.lists(st.sampled_from(["data", "x.jsonl", "..", ".", "sub dir"]), min_size=1, max_size=4)


@st.composite
def _argv_forms(draw: st.DrawFn) -> tuple[list[str], str]:
    """A path inside or outside the repo (maybe under the home folder), spelled one of many ways."""
    base, home = "/srv/work/repo", f"/home/{USER}"
    root = draw(st.sampled_from([base, home, "/srv/work", "/", f"{home}/projects"]))
    target = "/".join([root.rstrip("/"), *draw(_PATH_TAILS)])
    spelling = draw(st.sampled_from(["absolute", "relative", "tilde", "dotted"]))
    if spelling == "relative":
        text = os.path.relpath(target, base)
    elif spelling == "tilde" and target.startswith(home + "/"):
        text = "~" + target[len(home) :]
    elif spelling == "dotted":
        text = base + "/in/../" + os.path.relpath(target, base)
    else:
        text = target
    option = draw(st.sampled_from(["", "--output=", "--rejects-out=", "-o", "--params"]))
    argv = [f"{option}{text}"] if option.endswith("=") or not option else [option, text]
    return ["corpusprov", "merge", *argv], target


@given(_argv_forms())
def test_redact_argv_never_records_an_absolute_or_personal_path(form: tuple[list[str], str]) -> None:
    argv, _ = form
    redacted = redact_argv(argv, {"HOME": f"/home/{USER}"}, base=Path("/srv/work/repo"))
    assert len(redacted) == len(argv)
    for arg in redacted:
        value = arg.partition("=")[2] if arg.startswith("-") and "=" in arg else arg
        assert not value.startswith("/"), (argv, redacted)
        assert USER not in value or value.startswith("~/"), (argv, redacted)
        assert "/home/" not in value and not value.startswith(".."), (argv, redacted)
