"""Metadata: importing the IdP's (downloaded or pasted) and publishing our SP metadata."""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

from sso.saml.certificates import normalize_certificate
from sso.saml.errors import Reason, SamlError
from sso.saml.library import LIBRARY_BINDINGS, library_settings
from sso.saml.parsing import NS, strict_parse, xml_parser
from sso.saml.settings import Binding, IdpMetadata, SamlSettings, ServiceProvider

METADATA_FETCH_TIMEOUT_SECONDS = 10
MAX_METADATA_BYTES = 5 * 1024 * 1024


def fetch_idp_metadata(url: str) -> bytes:
    """Download IdP metadata over HTTPS; call it before opening a transaction."""
    if urllib.parse.urlsplit(url).scheme != "https":
        raise ValueError("the metadata URL must use https")
    try:
        with urllib.request.urlopen(url, timeout=METADATA_FETCH_TIMEOUT_SECONDS) as response:
            # The certificates we will trust come from here: no redirect to plain http.
            if urllib.parse.urlsplit(response.geturl()).scheme != "https":
                raise ValueError("the metadata URL redirected away from https")
            xml: bytes = response.read(MAX_METADATA_BYTES + 1)
    except (OSError, ValueError) as error:
        raise ValueError(f"could not fetch IdP metadata from {url}: {error}") from None
    if len(xml) > MAX_METADATA_BYTES:
        raise ValueError("the IdP metadata is too large")
    return xml


def parse_idp_metadata(xml: str | bytes) -> IdpMetadata:
    """The IdP's entity id, endpoints and signing certificates; ValueError if unusable."""
    raw = xml.encode() if isinstance(xml, str) else xml
    if len(raw) > MAX_METADATA_BYTES:
        raise ValueError("the IdP metadata is too large")
    try:
        # Comments are harmless here (Shibboleth writes them); DTDs and entities are not.
        strict_parse(raw, allow_comments=True, limit=MAX_METADATA_BYTES)
    except SamlError as error:
        if error.reason is Reason.FORBIDDEN_XML:
            raise ValueError("a DOCTYPE or entity declaration is not allowed in metadata") from None
        raise ValueError("the metadata is not well-formed XML") from None
    try:
        data: dict[str, Any] = {}
        binding = Binding.REDIRECT
        for binding in (Binding.REDIRECT, Binding.POST):
            data = OneLogin_Saml2_IdPMetadataParser.parse(
                raw, required_sso_binding=LIBRARY_BINDINGS[binding]
            )
            if data.get("idp", {}).get("singleSignOnService"):
                break
        root = etree.fromstring(raw, parser=xml_parser())
    except Exception as error:
        raise ValueError(f"not SAML IdP metadata: {error}") from None
    idp = data.get("idp") or {}
    entity_id = idp.get("entityId")
    sso = idp.get("singleSignOnService") or {}
    if not entity_id or not sso.get("url"):
        raise ValueError("the metadata has no IdP entity id or single sign-on URL")
    multi = idp.get("x509certMulti") or {}
    raw_certificates = multi.get("signing") or ([idp["x509cert"]] if idp.get("x509cert") else [])
    certificates = tuple(dict.fromkeys(normalize_certificate(c) for c in raw_certificates))
    if not certificates:
        raise ValueError("the metadata has no signing certificate")
    formats = tuple(
        (node.text or "").strip()
        for node in root.xpath("//md:IDPSSODescriptor/md:NameIDFormat", namespaces=NS)
    )
    return IdpMetadata(
        entity_id=str(entity_id),
        sso_url=str(sso["url"]),
        sso_binding=binding,
        slo_url=(idp.get("singleLogoutService") or {}).get("url"),
        certificates=certificates,
        name_id_formats=formats,
        wants_signed_requests=bool((data.get("security") or {}).get("authnRequestsSigned")),
    )


def sp_metadata(idp: SamlSettings, sp: ServiceProvider) -> str:
    """Our SP metadata for the IdP; signed with the connection's key when it has one."""
    settings = library_settings(idp, sp, sp_only=True)
    metadata = settings.get_sp_metadata()
    errors = settings.validate_metadata(metadata)
    if errors:
        raise SamlError(Reason.MISCONFIGURED)
    return metadata.decode() if isinstance(metadata, bytes) else str(metadata)
