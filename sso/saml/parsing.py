"""Reading untrusted SAML XML with lxml: strict parsing, the algorithm allow-lists, the
bindings' encodings, element text and instants. Everything here refuses by raising SamlError."""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from sso.saml.errors import Reason, SamlError

# How far the IdP's clock may be from ours, both ways.
CLOCK_SKEW = timedelta(minutes=3)
# Real responses are a few kilobytes (a large Entra groups claim stays under 100 KB).
MAX_MESSAGE_BYTES = 512 * 1024
MAX_ID_LENGTH = 256

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}

# Allow-lists: SHA-1 (RFC 6194), DSA, RSA PKCS#1 v1.5 key transport (Bleichenbacher) and 3DES
# are refused, and so are XPath/XSLT transforms.
SIGNATURE_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
_DIGEST_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
_CANONICALIZATION_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/2006/12/xml-c14n11",
    }
)
_TRANSFORMS = _CANONICALIZATION_ALGORITHMS | {
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
}
_ENCRYPTION_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes192-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    }
)


def xml_parser() -> Any:
    """An lxml parser that resolves no entity, loads no DTD and reaches no network."""
    # A parser per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
    )


def strict_parse(raw: bytes, allow_comments: bool = False, limit: int = MAX_MESSAGE_BYTES) -> Any:
    """Parse XML that may contain no DOCTYPE, entity, comment or processing instruction.

    Comments are refused rather than stripped: a comment inside a NameID
    (`admin@acme.example<!---->.evil.example`) is the classic way to make two parsers
    disagree about a signed value.
    """
    if len(raw) > limit:
        raise SamlError(Reason.INVALID_MESSAGE)
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise SamlError(Reason.FORBIDDEN_XML)
    try:
        root = etree.fromstring(raw, parser=xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        raise SamlError(Reason.INVALID_MESSAGE) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SamlError(Reason.FORBIDDEN_XML)
    if not allow_comments:
        refuse_comments(root, Reason.FORBIDDEN_XML)
    return root


def refuse_comments(root: Any, reason: Reason) -> None:
    """SamlError(reason) when the document holds a comment, processing instruction or entity."""
    # XPath, not iteration: python3-saml's element class hides comments from iterators.
    tree = root.getroottree()
    if tree.xpath("//comment() | //processing-instruction()") or any(
        isinstance(node, etree._Entity) for node in tree.iter()
    ):
        raise SamlError(reason)


def check_algorithms(root: Any, reason: Reason) -> None:
    """Every signature, digest, transform and encryption algorithm is on our allow-list."""
    for xpath, allowed in (
        ("//ds:SignatureMethod/@Algorithm", SIGNATURE_ALGORITHMS),
        ("//ds:Reference/ds:DigestMethod/@Algorithm", _DIGEST_ALGORITHMS),
        ("//ds:CanonicalizationMethod/@Algorithm", _CANONICALIZATION_ALGORITHMS),
        ("//ds:Transform/@Algorithm", _TRANSFORMS),
        ("//xenc:EncryptionMethod/@Algorithm", _ENCRYPTION_ALGORITHMS),
    ):
        for algorithm in root.xpath(xpath, namespaces=NS):
            if str(algorithm) not in allowed:
                raise SamlError(reason)
    signature_methods = root.xpath("//ds:Signature/ds:SignedInfo", namespaces=NS)
    for signed_info in signature_methods:
        if not signed_info.xpath("ds:SignatureMethod", namespaces=NS):
            raise SamlError(reason)


def unique_ids(root: Any) -> None:
    """SamlError unless every ID in the document is unique and of a sane length."""
    ids = [str(value) for value in root.xpath("//@ID")]
    if len(ids) != len(set(ids)) or any(len(i) > MAX_ID_LENGTH for i in ids):
        # Two elements with one ID let a signature reference resolve to the wrong one.
        raise SamlError(Reason.INVALID_SIGNATURE)


def decode_post(encoded: str | None) -> bytes:
    """A message of the HTTP-POST binding (base64), bounded in size."""
    if not encoded:
        raise SamlError(Reason.INVALID_MESSAGE)
    compact = "".join(encoded.split())
    if len(compact) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise SamlError(Reason.INVALID_MESSAGE)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise SamlError(Reason.INVALID_MESSAGE) from None


def decode_redirect(encoded: str | None) -> bytes:
    """A message of the HTTP-Redirect binding (base64 of raw DEFLATE), bounded in size."""
    raw = decode_post(encoded)
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(raw, MAX_MESSAGE_BYTES)
    except zlib.error:
        raise SamlError(Reason.INVALID_MESSAGE) from None
    if inflater.unconsumed_tail:
        # A deflate bomb: far more XML than any real logout message.
        raise SamlError(Reason.INVALID_MESSAGE)
    return xml


def element_text(node: Any) -> str | None:
    """An element's text, stripped; None when it has none."""
    # Comments were refused, so text is the whole content of the element.
    if node is None:
        return None
    value = node.text
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_instant(value: str | None) -> datetime | None:
    """An xs:dateTime attribute as an aware UTC datetime; None when absent."""
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SamlError(Reason.INVALID_CONDITIONS) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
