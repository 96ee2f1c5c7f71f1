"""An organization's SAML IdP for the browser tests: tests/sso's test IdP (real signed SAML
responses) with its sign-in page served by the browser's request routing, as no network is open.

It lives under the test server's own origin: over plain http the login's binding cookie is
SameSite=Lax (SameSite=None needs TLS), which a cross-site POST back to the ACS would not carry.
Its metadata asks for the HTTP-POST binding: the browser posts the AuthnRequest to the IdP, a
request routing sees, where the Redirect binding's redirect would go past it."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs
from xml.etree import ElementTree

from playwright.sync_api import Page, Route

from tests.e2e.conftest import LiveServer
from tests.e2e.seed import SeededOrg
from tests.sso.saml_idp import POST_BINDING, ServiceProviderUrls, TestIdp, key_pair

IDP_PATH = "/e2e-idp"


@dataclass(frozen=True, slots=True)
class Person:
    """Who signs in at the IdP, and the groups it says they are in."""

    subject: str
    email: str
    given_name: str
    family_name: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoutedIdp:
    idp: TestIdp
    sp: ServiceProviderUrls
    connection_id: str

    def sign_in_as(self, page: Page, person: Person) -> None:
        """From now on, the page's trips to the IdP sign `person` in: its sign-in page has a
        "Continue to Blue" button posting their SAML response to our ACS."""
        page.route(f"{self.idp.entity_id}/**", lambda route: self._answer(route, person))

    def _answer(self, route: Route, person: Person) -> None:
        form = parse_qs(route.request.post_data or "")
        request_id = ElementTree.fromstring(base64.b64decode(form["SAMLRequest"][0])).get("ID")
        saml_response = self.idp.response(
            self.sp,
            name_id=person.subject,
            in_response_to=request_id,
            attributes={
                "email": [person.email],
                "firstName": [person.given_name],
                "lastName": [person.family_name],
                "groups": list(person.groups),
            },
        )
        fields = {"SAMLResponse": saml_response, "RelayState": form["RelayState"][0]}
        inputs = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
            for name, value in fields.items()
        )
        body = (
            '<!doctype html><html lang="en"><head><title>Acme IdP</title></head><body><main>'
            f'<h1>Acme IdP</h1><form method="post" action="{self.sp.acs_url}">{inputs}'
            "<button>Continue to Blue</button></form></main></body></html>"
        )
        route.fulfill(status=200, content_type="text/html", body=body)


def add_saml_connection(
    server: LiveServer, org: SeededOrg, tmp_path: Path, name: str = "Acme Okta"
) -> RoutedIdp:
    """A SAML connection (Okta's attribute names) to a new test IdP, made with the CLI."""
    idp = TestIdp(server.url + IDP_PATH, key_pair("e2e-acme-idp"))
    metadata = tmp_path / "idp.xml"
    metadata.write_bytes(idp.metadata(sso_binding=POST_BINDING))
    added = server.cli(
        "connection", "add-saml", "--org", org.slug, "--metadata", str(metadata),
        "--preset", "okta", "--name", name, "--json",
    )  # fmt: skip
    connection_id = json.loads(added)["id"]
    return RoutedIdp(
        idp, ServiceProviderUrls.for_connection(server.url, connection_id), connection_id
    )
