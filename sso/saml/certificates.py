"""X.509 certificates of a connection: the IdP's signing certificates and our own SP key pair."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def normalize_certificate(text: str) -> str:
    """A certificate (PEM or bare base64 DER) as base64 DER; ValueError if unusable."""
    body = "".join(
        line.strip()
        for line in text.strip().splitlines()
        if line.strip() and not line.startswith("-----")
    )
    try:
        der = base64.b64decode(body, validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as error:
        raise ValueError("not an X.509 certificate") from error
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"the certificate's RSA key has {key.key_size} bits; 2048 needed")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("only RSA and EC signing certificates are supported")
    return base64.b64encode(der).decode()


def certificate_fingerprint(certificate: str) -> str:
    """The SHA-256 fingerprint of a base64 DER certificate, as colon-separated hex."""
    digest = hashlib.sha256(base64.b64decode(certificate)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def certificate_expires_at(certificate: str) -> datetime:
    """When a base64 DER certificate stops being valid."""
    return x509.load_der_x509_certificate(base64.b64decode(certificate)).not_valid_after_utc


def generate_sp_key_pair(common_name: str) -> tuple[str, str]:
    """A new RSA-3072 private key and self-signed certificate (PEM) for one connection."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()
