"""Ed25519 keys for attestations: PEM files read into securesystemslib signers and keys, with clear errors.

Keys are read to sign or verify and never written anywhere: not into a statement, not into a manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from corpusprov.errors import InputError

__all__ = ["load_public_key", "load_signer"]

_ED25519_FIX: Final = "generate one with `openssl genpkey -algorithm ed25519 -out key.pem`"


def _read_key(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} does not exist", path=str(path), fix="give the path of a PEM key file") from None
    except IsADirectoryError:
        raise InputError(f"{what} is a folder", path=str(path), fix="give the path of a PEM key file") from None
    except OSError as exc:
        raise InputError(
            f"cannot read {what}: {exc.strerror or exc}", path=str(path), fix="check its permissions"
        ) from None


def load_signer(path: Path) -> Any:
    """A securesystemslib CryptoSigner over the unencrypted Ed25519 PEM private key at ``path``."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    data = _read_key(path, "signing key")
    if b"-----BEGIN" not in data:
        raise InputError("signing key is not a PEM file", path=str(path), fix=_ED25519_FIX)
    if b"PUBLIC KEY-----" in data:
        raise InputError(
            "this is a public key; --key takes the private key", path=str(path), fix="verify with --pubkey instead"
        )
    if b"ENCRYPTED" in data:
        raise InputError(
            "signing key is encrypted (passphrase-protected)",
            path=str(path),
            fix="decrypt a copy with `openssl pkey -in key.pem -out key-plain.pem` and keep it private",
        )
    try:
        private_key = load_pem_private_key(data, password=None)
    except TypeError:
        raise InputError(
            "signing key is encrypted (passphrase-protected)",
            path=str(path),
            fix="decrypt a copy with `openssl pkey -in key.pem -out key-plain.pem` and keep it private",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError("signing key is not a readable PEM private key", path=str(path), fix=_ED25519_FIX) from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise InputError(
            f"signing key is {_key_kind(private_key)}, not Ed25519", path=str(path), fix=_ED25519_FIX
        ) from None
    return CryptoSigner(private_key)


def _key_kind(key: object) -> str:
    """What kind of key ``key`` is, for messages."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519

    kinds: tuple[tuple[tuple[type, ...], str], ...] = (
        ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "an RSA key"),
        ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "an ECDSA key"),
        ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "a DSA key"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448 key"),
        (
            (x25519.X25519PrivateKey, x25519.X25519PublicKey, x448.X448PrivateKey, x448.X448PublicKey),
            "an X25519/X448 key",
        ),
    )
    return next((name for types, name in kinds if isinstance(key, types)), "another kind of key")


def load_public_key(path: Path) -> Any:
    """A securesystemslib key for the Ed25519 PEM public key at ``path``."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    data = _read_key(path, "public key")
    fix = "derive it from the signing key with `openssl pkey -in key.pem -pubout -out key.pub`"
    if b"PRIVATE KEY-----" in data:
        raise InputError("this is a private key; --pubkey takes the public key", path=str(path), fix=fix)
    try:
        public_key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise InputError("public key is not a PEM public key", path=str(path), fix=fix) from None
    if not isinstance(public_key, Ed25519PublicKey):
        raise InputError(f"public key is {_key_kind(public_key)}, not Ed25519", path=str(path), fix=fix)
    return SSlibKey.from_crypto(public_key)
