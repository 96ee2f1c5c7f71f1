"""A test SAML identity provider: its own RSA key and self-signed certificate, metadata, and
real SAML responses built as XML and signed (and optionally encrypted) with python-xmlsec.

Responses are built in steps so that tests can tamper with them between steps:
`build_response` (unsigned XML) → `sign` (assertion and/or response) → `encrypt_assertion`
→ `encode`. `TestIdp.response` does the usual sequence in one call.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import quote_plus

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped]

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"samlp": SAMLP, "saml": SAML, "ds": DS, "md": MD}

PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
RSA_SHA256_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1_URI = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"

# Leave the value to the builder's default; None leaves the element or attribute out.
DEFAULT = "__default__"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An RSA private key and its self-signed certificate (PEM)."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def cert_b64(self) -> str:
        lines = self.cert_pem.decode().strip().splitlines()
        return "".join(line for line in lines if not line.startswith("-----"))

    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key


@cache
def key_pair(name: str, bits: int = 2048) -> KeyPair:
    """A key pair made once per test session for each name."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


@dataclass(frozen=True, slots=True)
class ServiceProviderUrls:
    """Our side of a connection, as the IdP was told it."""

    entity_id: str
    acs_url: str
    slo_url: str

    @classmethod
    def for_connection(cls, base_url: str, connection_id: object) -> ServiceProviderUrls:
        prefix = f"{base_url}/sso/saml/{connection_id}"
        return cls(f"{prefix}/metadata", f"{prefix}/acs", f"{prefix}/slo")


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return f"_{uuid.uuid4().hex}"


def _child(parent: Any, namespace: str, tag: str, text: str | None = None, **attrib: str) -> Any:
    element = etree.SubElement(parent, f"{{{namespace}}}{tag}", attrib)
    if text is not None:
        element.text = text
    return element


def _pick(value: str | None, default: str) -> str | None:
    return default if value == DEFAULT else value


def sign(
    element: Any,
    keys: KeyPair,
    signature_method: Any = None,
    digest_method: Any = None,
) -> Any:
    """Sign an element (enveloped, exclusive c14n) right after its Issuer; returns Signature."""
    signature = xmlsec.template.create(
        element,
        xmlsec.constants.TransformExclC14N,
        signature_method or xmlsec.constants.TransformRsaSha256,
        ns="ds",
    )
    issuer = element.find(f"{{{SAML}}}Issuer")
    if issuer is not None:
        issuer.addnext(signature)
    else:
        element.insert(0, signature)
    reference = xmlsec.template.add_reference(
        signature, digest_method or xmlsec.constants.TransformSha256, uri=f"#{element.get('ID')}"
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    x509_data = xmlsec.template.add_x509_data(key_info)
    xmlsec.template.x509_data_add_certificate(x509_data)
    key = xmlsec.Key.from_memory(keys.key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(keys.cert_pem, xmlsec.constants.KeyDataFormatPem)
    context = xmlsec.SignatureContext()
    context.key = key
    xmlsec.tree.add_ids(element.getroottree().getroot(), ["ID"])
    context.sign(signature)
    return signature


def assertion_of(root: Any) -> Any:
    assertion = root.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    return assertion


def encrypt_assertion(
    root: Any,
    sp_cert_pem: bytes,
    method: Any = None,
    key_transport: Any = None,
) -> Any:
    """Replace the (signed) assertion by an EncryptedAssertion for the SP's certificate."""
    assertion = assertion_of(root)
    encrypted_data = xmlsec.template.encrypted_data_create(
        root,
        method or xmlsec.constants.TransformAes256Cbc,
        type=xmlsec.constants.TypeEncElement,
        ns="xenc",
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(encrypted_data, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(
        key_info, key_transport or xmlsec.constants.TransformRsaOaep
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_cert_pem, xmlsec.constants.KeyDataFormatCertPem))
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(
        xmlsec.constants.KeyDataAes, 256, xmlsec.constants.KeyDataTypeSession
    )
    encrypted = context.encrypt_xml(encrypted_data, assertion)
    wrapper = etree.Element(f"{{{SAML}}}EncryptedAssertion")
    encrypted.addprevious(wrapper)
    wrapper.append(encrypted)
    return wrapper


def encode(root: Any) -> str:
    """The POST binding's SAMLResponse value."""
    return base64.b64encode(etree.tostring(root, xml_declaration=True, encoding="UTF-8")).decode()


def decode_redirect(value: str) -> Any:
    """A Redirect-binding message (deflated, base64) as XML."""
    return etree.fromstring(zlib.decompress(base64.b64decode(value), -15))


class TestIdp:
    """An identity provider with one signing key; it signs what it is told to."""

    __test__ = False  # not a pytest test class

    def __init__(self, entity_id: str, keys: KeyPair) -> None:
        self.entity_id = entity_id
        self.keys = keys
        self.sso_url = f"{entity_id}/sso"
        self.slo_url = f"{entity_id}/slo"

    # ------------------------------------------------------------ metadata

    def metadata(
        self,
        certificates: Sequence[KeyPair] | None = None,
        name_id_formats: Sequence[str] = (PERSISTENT, EMAIL),
        sso_binding: str = REDIRECT_BINDING,
        with_slo: bool = True,
        want_signed_requests: bool = False,
    ) -> bytes:
        """The IdP's SAML metadata document."""
        root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap=NSMAP, entityID=self.entity_id)
        descriptor = _child(
            root,
            MD,
            "IDPSSODescriptor",
            protocolSupportEnumeration=SAMLP,
            WantAuthnRequestsSigned="true" if want_signed_requests else "false",
        )
        for keys in certificates if certificates is not None else [self.keys]:
            key_descriptor = _child(descriptor, MD, "KeyDescriptor", use="signing")
            data = _child(_child(key_descriptor, DS, "KeyInfo"), DS, "X509Data")
            _child(data, DS, "X509Certificate", keys.cert_b64)
        if with_slo:
            _child(
                descriptor,
                MD,
                "SingleLogoutService",
                Binding=REDIRECT_BINDING,
                Location=self.slo_url,
            )
        for name_id_format in name_id_formats:
            _child(descriptor, MD, "NameIDFormat", name_id_format)
        _child(descriptor, MD, "SingleSignOnService", Binding=sso_binding, Location=self.sso_url)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    # ------------------------------------------------------------ responses

    def build_response(
        self,
        sp: ServiceProviderUrls,
        name_id: str | None = "00u1jane",
        name_id_format: str | None = PERSISTENT,
        attributes: Mapping[str, Sequence[str]] | None = None,
        in_response_to: str | None = None,
        response_in_response_to: str | None = DEFAULT,
        issuer: str | None = DEFAULT,
        response_issuer: str | None = DEFAULT,
        destination: str | None = DEFAULT,
        audience: str | None = DEFAULT,
        recipient: str | None = DEFAULT,
        status: str = SUCCESS,
        clock_offset: timedelta = timedelta(0),
        lifetime: timedelta = timedelta(minutes=5),
        assertion_id: str | None = None,
    ) -> Any:
        """An unsigned samlp:Response with one assertion, valid for `sp` unless told otherwise.

        `clock_offset` moves every timestamp, as an IdP whose clock is off would.
        """
        now = datetime.now(UTC) + clock_offset
        response = etree.Element(
            f"{{{SAMLP}}}Response",
            nsmap={"samlp": SAMLP, "saml": SAML},
            ID=new_id(),
            Version="2.0",
            IssueInstant=instant(now),
        )
        if _pick(destination, sp.acs_url) is not None:
            response.set("Destination", str(_pick(destination, sp.acs_url)))
        outer_irt = _pick(response_in_response_to, in_response_to or "")
        if outer_irt:
            response.set("InResponseTo", outer_irt)
        outer_issuer = _pick(response_issuer, self.entity_id)
        if outer_issuer is not None:
            _child(response, SAML, "Issuer", outer_issuer)
        status_node = _child(response, SAMLP, "Status")
        _child(status_node, SAMLP, "StatusCode", Value=status)

        # xs and xsi are declared on the assertion itself so that they survive encryption.
        assertion = etree.SubElement(
            response,
            f"{{{SAML}}}Assertion",
            {"ID": assertion_id or new_id(), "Version": "2.0", "IssueInstant": instant(now)},
            nsmap={"xs": XS, "xsi": XSI},
        )
        assertion_issuer = _pick(issuer, self.entity_id)
        if assertion_issuer is not None:
            _child(assertion, SAML, "Issuer", assertion_issuer)
        subject = _child(assertion, SAML, "Subject")
        if name_id is not None:
            format_attribute = {"Format": name_id_format} if name_id_format else {}
            _child(subject, SAML, "NameID", name_id, **format_attribute)
        confirmation = _child(subject, SAML, "SubjectConfirmation", Method=BEARER)
        confirmation_data = _child(
            confirmation, SAML, "SubjectConfirmationData", NotOnOrAfter=instant(now + lifetime)
        )
        if _pick(recipient, sp.acs_url) is not None:
            confirmation_data.set("Recipient", str(_pick(recipient, sp.acs_url)))
        if in_response_to:
            confirmation_data.set("InResponseTo", in_response_to)
        conditions = _child(
            assertion,
            SAML,
            "Conditions",
            NotBefore=instant(now - timedelta(minutes=1)),
            NotOnOrAfter=instant(now + lifetime),
        )
        if _pick(audience, sp.entity_id) is not None:
            restriction = _child(conditions, SAML, "AudienceRestriction")
            _child(restriction, SAML, "Audience", _pick(audience, sp.entity_id))
        statement = _child(
            assertion,
            SAML,
            "AuthnStatement",
            AuthnInstant=instant(now),
            SessionIndex=new_id(),
        )
        context = _child(statement, SAML, "AuthnContext")
        _child(
            context,
            SAML,
            "AuthnContextClassRef",
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        )
        if attributes:
            attribute_statement = _child(assertion, SAML, "AttributeStatement")
            for name, values in attributes.items():
                attribute = _child(
                    attribute_statement,
                    SAML,
                    "Attribute",
                    Name=name,
                    NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
                )
                for value in values:
                    node = _child(attribute, SAML, "AttributeValue", value)
                    node.set(f"{{{XSI}}}type", "xs:string")
        return response

    def response(
        self,
        sp: ServiceProviderUrls,
        signed: str = "assertion",
        keys: KeyPair | None = None,
        encrypt_for: bytes | None = None,
        **options: Any,
    ) -> str:
        """A complete SAMLResponse value: built, signed as told, optionally encrypted."""
        root = self.build_response(sp, **options)
        keys = keys or self.keys
        if signed in ("assertion", "both"):
            sign(assertion_of(root), keys)
        if encrypt_for is not None:
            encrypt_assertion(root, encrypt_for)
        if signed in ("response", "both"):
            sign(root, keys)
        return encode(root)

    # ----------------------------------------------------------- logout

    def logout_request(
        self,
        sp: ServiceProviderUrls,
        name_id: str,
        name_id_format: str | None = PERSISTENT,
        signed: bool = True,
        relay_state: str | None = None,
        keys: KeyPair | None = None,
        signature_algorithm: str = RSA_SHA256_URI,
        clock_offset: timedelta = timedelta(0),
    ) -> str:
        """An IdP-initiated LogoutRequest as a Redirect-binding query string."""
        root = self.logout_request_xml(sp, name_id, name_id_format, clock_offset)
        return self._redirect_query(
            "SAMLRequest", root, signed, relay_state, keys, signature_algorithm
        )

    def logout_request_xml(
        self,
        sp: ServiceProviderUrls,
        name_id: str,
        name_id_format: str | None = PERSISTENT,
        clock_offset: timedelta = timedelta(0),
    ) -> Any:
        """An unsigned LogoutRequest element (sign it with `sign` for the POST binding)."""
        root = etree.Element(
            f"{{{SAMLP}}}LogoutRequest",
            nsmap={"samlp": SAMLP, "saml": SAML},
            ID=new_id(),
            Version="2.0",
            IssueInstant=instant(datetime.now(UTC) + clock_offset),
            Destination=sp.slo_url,
        )
        _child(root, SAML, "Issuer", self.entity_id)
        format_attribute = {"Format": name_id_format} if name_id_format else {}
        _child(root, SAML, "NameID", name_id, **format_attribute)
        return root

    def logout_response(
        self,
        sp: ServiceProviderUrls,
        in_response_to: str,
        relay_state: str | None,
        signed: bool = True,
    ) -> str:
        """The IdP's LogoutResponse to our LogoutRequest, as a Redirect-binding query string."""
        root = etree.Element(
            f"{{{SAMLP}}}LogoutResponse",
            nsmap={"samlp": SAMLP, "saml": SAML},
            ID=new_id(),
            Version="2.0",
            IssueInstant=instant(datetime.now(UTC)),
            Destination=sp.slo_url,
            InResponseTo=in_response_to,
        )
        _child(root, SAML, "Issuer", self.entity_id)
        status = _child(root, SAMLP, "Status")
        _child(status, SAMLP, "StatusCode", Value=SUCCESS)
        return self._redirect_query("SAMLResponse", root, signed, relay_state, None, RSA_SHA256_URI)

    def _redirect_query(
        self,
        field: str,
        root: Any,
        signed: bool,
        relay_state: str | None,
        keys: KeyPair | None,
        signature_algorithm: str,
    ) -> str:
        # SAML Bindings §3.4.4.1: the signature covers the URL-encoded parameters in order.
        deflated = zlib.compress(etree.tostring(root))[2:-4]
        parts = [(field, base64.b64encode(deflated).decode())]
        if relay_state is not None:
            parts.append(("RelayState", relay_state))
        if signed:
            parts.append(("SigAlg", signature_algorithm))
        query = "&".join(f"{name}={quote_plus(value)}" for name, value in parts)
        if signed:
            digest = hashes.SHA1() if signature_algorithm == RSA_SHA1_URI else hashes.SHA256()
            signature = (
                (keys or self.keys).private_key().sign(query.encode(), padding.PKCS1v15(), digest)
            )
            query += "&Signature=" + quote_plus(base64.b64encode(signature).decode())
        return query
