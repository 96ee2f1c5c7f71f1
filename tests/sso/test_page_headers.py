"""Sign-in pages cannot be framed and run no inline script or style (issue #16 item 7)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("GET", "/sso/", None),
        ("POST", "/sso/", {"email": "nobody@unknown.example"}),
        ("GET", "/sso/saml/00000000-0000-0000-0000-000000000000/login", None),
    ],
)
def test_sign_in_pages_carry_strict_security_headers(
    client: FlaskClient, method: str, path: str, data: dict[str, str] | None
) -> None:
    response = client.open(path, method=method, data=data)
    assert response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "form-action 'self';" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    body = response.get_data(as_text=True)
    assert "<script>" not in body and "<style>" not in body and "style=" not in body


def test_the_pages_styles_and_script_are_served_by_the_app(client: FlaskClient) -> None:
    page = client.get("/sso/").get_data(as_text=True)
    assert 'href="/sso/static/sso.css"' in page
    assert 'src="/sso/static/autosubmit.js"' in page
    assert client.get("/sso/static/sso.css").status_code == 200
    assert client.get("/sso/static/autosubmit.js").status_code == 200


def test_json_answers_keep_their_own_headers(client: FlaskClient) -> None:
    response = client.get("/sso/session")
    assert response.status_code == 401
    assert "Content-Security-Policy" not in response.headers
