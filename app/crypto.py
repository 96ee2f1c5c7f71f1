"""Secrets at rest: Fernet (AES-128-CBC + HMAC) under a key derived from BLUE_SECRET_KEY."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(Exception):
    """A stored secret cannot be read with the configured key."""


def _fernet(secret_key: str) -> Fernet:
    # A key of its own for data at rest, so the session-signing key is never used directly.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"blue-provisioning", info=b"secrets-at-rest"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(secret_key: str, plaintext: str) -> str:
    """The encrypted form of a secret, safe to store."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str, token: str) -> str:
    """The secret behind an encrypted value; DecryptionError if the key does not fit."""
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("stored secret cannot be decrypted with BLUE_SECRET_KEY") from None
