"""`corpusprov attest` and `verify-attestation`: in-toto Statement v1 + SLSA Provenance v1, DSSE-signed or bare."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests.conftest import REPO_ROOT, Cli

#: Each stage's corpus path (its manifest is beside it).
STAGES = {"merge": "out/grid.jsonl", "aggregate": "out/mos.jsonl"}


@pytest.fixture
def repo(cli: Cli, tmp_path: Path) -> Path:
    """A repository root (a .dvc folder) with the sample shards merged and aggregated."""
    (tmp_path / ".dvc").mkdir()
    shutil.copy2(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    for args in (
        ("sample", "--out", "raw", "--rows", "60"),
        ("merge", "raw/encode", "-o", "out/grid.jsonl", "--params", "params.yaml"),
        ("aggregate", "raw/mos", "-o", "out/mos.jsonl", "--params", "params.yaml"),
    ):
        assert cli(*args).exit_code == 0
    return tmp_path


def write_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh Ed25519 key pair as PEM files (what `openssl genpkey -algorithm ed25519` writes)."""
    private = ed25519.Ed25519PrivateKey.generate()
    key = folder / f"{name}.pem"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pub = folder / f"{name}.pub"
    pub.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key, pub


def schema(name: str) -> dict[str, Any]:
    text = resources.files("corpusprov").joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def file_digest(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}  # noqa: S324


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_the_statement_is_in_toto_v1_slsa_v1_over_every_output_and_the_manifest(
    repo: Path, cli: Cli, stage: str
) -> None:
    manifest_path = f"{STAGES[stage]}.manifest.json"
    result = cli("attest", manifest_path)
    assert result.exit_code == 0, result.stderr
    target = repo / STAGES[stage].replace(".jsonl", ".jsonl.intoto.json")
    manifest = json.loads((repo / manifest_path).read_text("utf-8"))
    assert result.stdout == (
        f"attest: wrote {target.relative_to(repo).as_posix()} (in-toto Statement v1, SLSA Provenance v1): "
        f"{len(manifest['outputs']) + 1} subjects, unsigned\n"
    )
    raw = target.read_bytes()
    statement = json.loads(raw)
    Draft202012Validator(schema("in-toto-statement-v1")).validate(statement)
    Draft202012Validator(schema("slsa-provenance-v1")).validate(statement["predicate"])
    # Spec facts, checked independently of our schemas.
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    expected = [entry["path"] for entry in manifest["outputs"]] + [manifest_path]
    assert [subject["name"] for subject in statement["subject"]] == expected
    for subject in statement["subject"]:
        assert subject["digest"] == file_digest(repo / subject["name"])
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"] == f"https://corpusprov.dev/buildtypes/{stage}/v1"
    assert definition["externalParameters"] == {
        "arguments": manifest["command"]["args"],
        "params": manifest["params"]["values"],
        "paramsGroup": stage,
    }
    dependencies = {item["name"]: item["digest"] for item in definition["resolvedDependencies"]}
    for record in manifest["inputs"]:
        assert dependencies[record["path"]] == file_digest(repo / record["path"])
    assert dependencies["params.yaml"] == file_digest(repo / "params.yaml")
    run = statement["predicate"]["runDetails"]
    assert run["metadata"] == {
        "startedOn": manifest["provenance"]["started_at_utc"],
        "finishedOn": manifest["provenance"]["finished_at_utc"],
    }
    assert run["builder"]["version"]["corpusprov"] == manifest["tool"]["version"]
    # Deterministic: 2-space indent, sorted keys, trailing newline; the same bytes twice.
    assert raw == (json.dumps(statement, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    assert cli("attest", manifest_path).exit_code == 0
    assert target.read_bytes() == raw


def test_a_signed_envelope_verifies_with_its_public_key(repo: Path, cli: Cli, tmp_path: Path) -> None:
    key, pub = write_key(tmp_path, "key")
    result = cli("attest", "out/grid.jsonl.manifest.json", "--key", str(key))
    assert result.exit_code == 0, result.stderr
    assert "3 subjects, signed (DSSE, Ed25519 key " in result.stdout
    envelope = json.loads((repo / "out/grid.jsonl.intoto.dsse.json").read_text("utf-8"))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert len(envelope["signatures"]) == 1
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    # Keys never enter the evidence.
    key_text = key.read_text("ascii").splitlines()[1]
    assert key_text not in (repo / "out/grid.jsonl.intoto.dsse.json").read_text("utf-8")

    checked = cli("verify-attestation", "out/grid.jsonl.intoto.dsse.json", "--pubkey", str(pub))
    assert checked.exit_code == 0, checked.stdout
    assert "signature verified" in checked.stdout
    assert checked.stdout.endswith("verify-attestation: OK: 3 subjects match\n")
    as_json = json.loads(
        cli("verify-attestation", "out/grid.jsonl.intoto.dsse.json", "--pubkey", str(pub), "--json").stdout
    )
    assert as_json["ok"] is True
    assert as_json["signature"] == "verified"
    assert [item["status"] for item in as_json["subjects"]] == ["ok", "ok", "ok"]


@pytest.mark.usefixtures("repo")
def test_a_different_key_fails(cli: Cli, tmp_path: Path) -> None:
    key, _ = write_key(tmp_path, "key")
    _, other_pub = write_key(tmp_path, "other")
    assert cli("attest", "out/grid.jsonl.manifest.json", "--key", str(key)).exit_code == 0
    result = cli("verify-attestation", "out/grid.jsonl.intoto.dsse.json", "--pubkey", str(other_pub))
    assert result.exit_code == 1
    assert "signature does NOT verify" in result.stdout
    assert result.stdout.endswith("verify-attestation: FAILED: signature\n")


def test_a_tampered_payload_fails_the_signature(repo: Path, cli: Cli, tmp_path: Path) -> None:
    key, pub = write_key(tmp_path, "key")
    assert cli("attest", "out/grid.jsonl.manifest.json", "--key", str(key)).exit_code == 0
    path = repo / "out/grid.jsonl.intoto.dsse.json"
    envelope = json.loads(path.read_text("utf-8"))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["paramsGroup"] = "forged"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope), encoding="utf-8")
    result = cli("verify-attestation", str(path), "--pubkey", str(pub))
    assert result.exit_code == 1
    assert "signature does NOT verify" in result.stdout


def test_a_changed_subject_fails_and_is_named(repo: Path, cli: Cli, tmp_path: Path) -> None:
    key, pub = write_key(tmp_path, "key")
    assert cli("attest", "out/grid.jsonl.manifest.json", "--key", str(key)).exit_code == 0
    corpus = repo / "out/grid.jsonl"
    data = bytearray(corpus.read_bytes())
    data[100] ^= 0x01
    corpus.write_bytes(bytes(data))
    result = cli("verify-attestation", "out/grid.jsonl.intoto.dsse.json", "--pubkey", str(pub))
    assert result.exit_code == 1
    assert "  changed  out/grid.jsonl: sha256 " in result.stdout
    assert "signature verified" in result.stdout
    assert result.stdout.endswith("verify-attestation: FAILED: 1 of 3 subjects (out/grid.jsonl)\n")
    corpus.unlink()
    missing = cli("verify-attestation", "out/grid.jsonl.intoto.dsse.json", "--pubkey", str(pub))
    assert missing.exit_code == 1
    assert "  missing  out/grid.jsonl: not on disk" in missing.stdout


def test_any_single_byte_change_to_any_subject_is_caught(repo: Path, cli: Cli) -> None:
    assert cli("attest", "out/mos.jsonl.manifest.json").exit_code == 0
    statement = json.loads((repo / "out/mos.jsonl.intoto.json").read_text("utf-8"))
    names = [subject["name"] for subject in statement["subject"]]

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(which=st.sampled_from(names), position=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255))
    def check(which: str, position: float, flip: int) -> None:
        path = repo / which
        original = path.read_bytes()
        changed = bytearray(original)
        changed[int(position * len(original))] ^= flip
        path.write_bytes(bytes(changed))
        try:
            result = cli("verify-attestation", "out/mos.jsonl.intoto.json", "--json")
        finally:
            path.write_bytes(original)
        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert {item["name"]: item["status"] for item in report["subjects"] if item["status"] != "ok"} == {
            which: "changed"
        }

    check()


@pytest.mark.usefixtures("repo")
def test_an_unsigned_statement_passes_without_a_key_and_fails_with_one(cli: Cli, tmp_path: Path) -> None:
    _, pub = write_key(tmp_path, "key")
    assert cli("attest", "out/grid.jsonl.manifest.json").exit_code == 0
    bare = cli("verify-attestation", "out/grid.jsonl.intoto.json")
    assert bare.exit_code == 0
    assert "  unsigned statement (no signature to check)\n" in bare.stdout
    keyed = cli("verify-attestation", "out/grid.jsonl.intoto.json", "--pubkey", str(pub))
    assert keyed.exit_code == 1
    assert "unsigned statement: --pubkey asks for a signed envelope" in keyed.stdout


@pytest.mark.usefixtures("repo")
def test_an_envelope_without_pubkey_says_the_signature_was_not_checked(cli: Cli, tmp_path: Path) -> None:
    key, _ = write_key(tmp_path, "key")
    assert cli("attest", "out/grid.jsonl.manifest.json", "--key", str(key)).exit_code == 0
    result = cli("verify-attestation", "out/grid.jsonl.intoto.dsse.json")
    assert result.exit_code == 0
    assert "signature NOT checked (give --pubkey to check it)" in result.stdout
    assert result.stdout.endswith("subjects match; the signature was NOT checked\n")


def test_a_statement_that_breaks_the_schema_is_refused(repo: Path, cli: Cli) -> None:
    assert cli("attest", "out/grid.jsonl.manifest.json").exit_code == 0
    path = repo / "out/grid.jsonl.intoto.json"
    statement = json.loads(path.read_text("utf-8"))
    del statement["subject"][0]["digest"]
    path.write_text(json.dumps(statement), encoding="utf-8")
    result = cli("verify-attestation", "out/grid.jsonl.intoto.json")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "corpusprov: error: out/grid.jsonl.intoto.json: not an in-toto Statement v1 with SLSA Provenance v1: subject[0]"
    )


def _ec_key(folder: Path) -> Path:
    path = folder / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _encrypted_key(folder: Path) -> Path:
    path = folder / "encrypted.pem"
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return path


def _public_key(folder: Path) -> Path:
    return write_key(folder, "pair")[1]


def _not_pem(folder: Path) -> Path:
    path = folder / "junk.pem"
    path.write_text("not a key\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make_key", "message"),
    [
        (lambda folder: folder / "absent.pem", "signing key does not exist; give the path of a PEM key file"),
        (_ec_key, "signing key is an ECDSA key, not Ed25519; generate one with `openssl genpkey"),
        (_encrypted_key, "signing key is encrypted (passphrase-protected); decrypt a copy with `openssl pkey"),
        (_public_key, "this is a public key; --key takes the private key"),
        (_not_pem, "signing key is not a PEM file"),
    ],
)
def test_bad_keys_are_one_line_exit_2_and_write_nothing(
    repo: Path, cli: Cli, tmp_path: Path, make_key: Any, message: str
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    key = make_key(keys)
    result = cli("attest", "out/grid.jsonl.manifest.json", "--key", str(key))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"corpusprov: error: {key}: {message}")
    assert "Traceback" not in result.stderr
    assert list(repo.rglob("*.intoto*.json")) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "out/none.manifest.json: manifest does not exist"),
        ("{", "out/none.manifest.json: manifest is not valid JSON"),
        ('{"kind": "merge"}', "out/none.manifest.json: manifest does not match the schema"),
    ],
)
def test_a_missing_or_invalid_manifest_is_one_line_and_writes_nothing(
    repo: Path, cli: Cli, content: str | None, message: str
) -> None:
    if content is not None:
        (repo / "out/none.manifest.json").write_text(content, encoding="utf-8")
    result = cli("attest", "out/none.manifest.json")
    assert result.exit_code in (1, 2)
    assert result.exit_code == (2 if content is None else 1)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"corpusprov: error: {message}")
    assert list(repo.rglob("*.intoto*.json")) == []


def test_an_output_that_changed_since_its_manifest_is_not_attested(repo: Path, cli: Cli) -> None:
    with (repo / "out/grid.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{}\n")
    result = cli("attest", "out/grid.jsonl.manifest.json")
    assert result.exit_code == 1
    assert result.stderr.startswith("corpusprov: error: out/grid.jsonl: output is not the one")
    assert list(repo.rglob("*.intoto*.json")) == []


@pytest.mark.parametrize(
    ("make_key", "message"),
    [
        (lambda folder: folder / "absent.pub", "public key does not exist"),
        (lambda folder: write_key(folder, "pair")[0], "this is a private key; --pubkey takes the public key"),
        (_not_pem, "public key is not a PEM public key"),
    ],
)
@pytest.mark.usefixtures("repo")
def test_bad_public_keys_are_one_line_and_exit_2(cli: Cli, tmp_path: Path, make_key: Any, message: str) -> None:
    key, _ = write_key(tmp_path, "key")
    assert cli("attest", "out/grid.jsonl.manifest.json", "--key", str(key)).exit_code == 0
    keys = tmp_path / "keys"
    keys.mkdir()
    pub = make_key(keys)
    result = cli("verify-attestation", "out/grid.jsonl.intoto.dsse.json", "--pubkey", str(pub))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"corpusprov: error: {pub}: {message}")


@pytest.mark.usefixtures("repo")
def test_a_missing_attestation_is_exit_2(cli: Cli) -> None:
    result = cli("verify-attestation", "out/nope.intoto.json")
    assert result.exit_code == 2
    assert result.stderr == (
        "corpusprov: error: out/nope.intoto.json: attestation does not exist; give the path `corpusprov attest` wrote\n"
    )


def test_subject_names_outside_the_repository_are_not_hashed(repo: Path, cli: Cli) -> None:
    assert cli("attest", "out/grid.jsonl.manifest.json").exit_code == 0
    path = repo / "out/grid.jsonl.intoto.json"
    statement = json.loads(path.read_text("utf-8"))
    statement["subject"][0]["name"] = "../outside.jsonl"
    statement["subject"][1]["name"] = "/etc/hostname"
    path.write_text(json.dumps(statement), encoding="utf-8")
    result = cli("verify-attestation", "out/grid.jsonl.intoto.json")
    assert result.exit_code == 1
    assert "  outside  ../outside.jsonl: the path leads outside the repository" in result.stdout
    assert "  outside  /etc/hostname: not a repo-relative path" in result.stdout
