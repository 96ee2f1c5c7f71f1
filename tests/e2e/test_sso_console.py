"""A security reviewer signs in to the console through the organization's own SAML IdP, in a
real browser: Mary Jackson, new to Blue, is provisioned just in time into the Design group,
which grants the security reviewer role; read-only, so the menu has no admin pages, an admin
page answers 403, and the rules and contract pages offer no form.

The IdP is tests/sso's test IdP (real signed SAML responses), its pages served by the browser's
request routing, as no network is open. It lives under the test server's own origin: over
plain http the login's binding cookie is SameSite=Lax (SameSite=None needs TLS), which a
cross-site POST back to the ACS would not carry."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs
from xml.etree import ElementTree

from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

from app.db import read_only_unit
from app.models import MappingRule
from tests.e2e.browser import assert_accessible
from tests.e2e.conftest import CheckPage, LiveServer
from tests.e2e.seed import SeededOrg
from tests.sso.saml_idp import POST_BINDING, ServiceProviderUrls, TestIdp, key_pair

IDP_PATH = "/e2e-idp"
REVIEWER = "mary.jackson@acme.example"


def idp_answer(idp: TestIdp, sp: ServiceProviderUrls) -> Callable[[Route], None]:
    """The IdP's sign-in page: it signs Mary Jackson (group Design) in and offers the form
    that posts her SAML response back to our ACS (a button, as no script runs here)."""

    def answer(route: Route) -> None:
        form = parse_qs(route.request.post_data or "")
        request_id = ElementTree.fromstring(base64.b64decode(form["SAMLRequest"][0])).get("ID")
        saml_response = idp.response(
            sp,
            name_id="okta-mary",
            in_response_to=request_id,
            attributes={
                "email": [REVIEWER],
                "firstName": ["Mary"],
                "lastName": ["Jackson"],
                "groups": ["Design"],
            },
        )
        fields = {"SAMLResponse": saml_response, "RelayState": form["RelayState"][0]}
        inputs = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
            for name, value in fields.items()
        )
        body = (
            '<!doctype html><html lang="en"><head><title>Acme IdP</title></head><body><main>'
            f'<h1>Acme IdP</h1><form method="post" action="{sp.acs_url}">{inputs}'
            "<button>Continue to Blue</button></form></main></body></html>"
        )
        route.fulfill(status=200, content_type="text/html", body=body)

    return answer


def test_reviewer_signs_in_through_saml_and_reads_only(
    page: Page, live_server: LiveServer, org: SeededOrg, tmp_path: Path, check_page: CheckPage
) -> None:
    idp = TestIdp(live_server.url + IDP_PATH, key_pair("e2e-acme-idp"))
    metadata = tmp_path / "idp.xml"
    # The HTTP-POST binding: the browser posts the AuthnRequest to the IdP (a request routing
    # sees, where the Redirect binding's redirect would go past it).
    metadata.write_bytes(idp.metadata(sso_binding=POST_BINDING))
    added = live_server.cli(
        "connection", "add-saml", "--org", org.slug, "--metadata", str(metadata),
        "--preset", "okta", "--name", "Acme Okta", "--json",
    )  # fmt: skip
    sp = ServiceProviderUrls.for_connection(live_server.url, json.loads(added)["id"])
    live_server.cli(
        "console", "grant", "--org", org.slug, "--group", "Design", "--role", "reviewer"
    )
    page.route(f"{idp.entity_id}/**", idp_answer(idp, sp))

    page.goto(f"{live_server.url}/console/sign-in")
    page.get_by_label("Work email or organization").fill(org.slug)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Acme Okta").click()
    expect(page.get_by_role("heading", name="Acme IdP")).to_be_visible()
    page.get_by_role("button", name="Continue to Blue").click()

    expect(page.get_by_text(f"{REVIEWER} · Security reviewer")).to_be_visible()
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Mapping rules")).to_be_visible()
    expect(nav.get_by_role("link", name="Import")).to_have_count(0)
    expect(nav.get_by_role("link", name="Connections")).to_have_count(0)

    nav.get_by_role("link", name="Mapping rules").click()
    expect(page.locator("#rules-table tbody tr")).to_have_count(3)
    expect(page.locator("#new-rule")).to_have_count(0)
    check_page("rules-reviewer")

    page.goto(f"{live_server.url}/console/contract")
    expect(page.locator("#contract-form")).to_have_count(0)
    for admin_page in (f"rules/{rule_id(live_server, org)}/edit", "connections/tokens"):
        response = page.goto(f"{live_server.url}/console/{admin_page}")
        assert response is not None and response.status == 403, admin_page
        expect(page.get_by_text("Your console role does not allow this.")).to_be_visible()
    assert_accessible(page)


def rule_id(server: LiveServer, org: SeededOrg) -> str:
    """One of the organization's mapping rules (an admin's edit page is at its id)."""
    with server.app.app_context(), read_only_unit() as session:
        found = session.scalar(select(MappingRule.id).where(MappingRule.org_id == org.id).limit(1))
    assert found is not None
    return str(found)
