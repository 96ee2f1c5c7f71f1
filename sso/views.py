"""SSO routes shared by SAML and OIDC: start page, finishing a login, session, logout."""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import urlsplit
from uuid import UUID

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from app import handoff
from app.db import unit_of_work
from app.errors import LoginRefusedError
from app.logs import current_request_id
from app.models import Group, IdpConnection, Membership, Organization, OrgDomain, RoleAssignment
from app.models import User as UserRow
from app.provisioning import Actor, LoginClaims, ProvisioningService
from app.web import settings
from sso import console_setup, sessions
from sso.connections import sp_urls
from sso.pages import add_security_headers, allow_form_target, error_page, refuse_unstorable_input

bp = Blueprint(
    "sso",
    __name__,
    url_prefix="/sso",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
bp.before_request(refuse_unstorable_input)
bp.after_request(add_security_headers)
log = logging.getLogger(__name__)
CONSOLE_PATH = "/console/"


def actor_for(connection: IdpConnection | None) -> Actor:
    """The IdP connection as the audit trail's actor, with the browser's request details."""
    return Actor(
        kind="sso",
        label=connection.name if connection is not None else "sso",
        request_id=current_request_id(),
        source_ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


def safe_return_to(value: str | None) -> str | None:
    """Only a path on Blue itself: never another host (open redirect) or a scheme."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 32 for c in value):
        return None
    return value


def refuse(connection: IdpConnection | None, reason: str, detail: str) -> Response:
    """Audit a refused login in its own transaction and show the person why."""
    log.info("login refused", extra={"reason": reason})
    if connection is not None:
        with unit_of_work() as session:
            organization = session.get(Organization, connection.org_id)
            live = session.get(IdpConnection, connection.id)
            if organization is not None:
                service = ProvisioningService(session, organization, actor_for(live))
                service.record_refused_login(live, reason, detail)
    return error_page("Sign-in refused", detail)


def handoff_token(
    session: Session, organization: Organization, user: UserRow, document: dict[str, object]
) -> str | None:
    """The signed hand-off for Blue, when the organization has a Blue URL to send it to."""
    if not organization.blue_url:
        return None
    return handoff.mint(
        session,
        settings().secret_key,
        issuer=settings().base_url,
        audience=organization.blue_url,
        claims={
            "sub": str(user.id),
            "org": organization.slug,
            "email": user.primary_email or user.user_name,
            "name": user.display_name,
            "roles": document["roles"],
            "seat": user.seat,
        },
    )


def complete_login(
    connection_id: UUID, claims: LoginClaims, return_to: str | None = None
) -> BaseResponse:
    """Provision the user, open a session and hand off to Blue (or return to our console)."""
    if console_setup.is_test_sign_in(return_to):  # provisions nothing: shows what was sent
        return console_setup.tested_sign_in_page(connection_id, claims, return_to or "")
    connection: IdpConnection | None = None
    try:
        with unit_of_work() as session:
            connection = session.get(IdpConnection, connection_id)
            if connection is None:
                return error_page("Sign-in refused", "This sign-in connection does not exist.")
            organization = session.get(Organization, connection.org_id)
            assert organization is not None
            service = ProvisioningService(session, organization, actor_for(connection))
            user = service.login(connection, claims)
            session_id = sessions.start(session, user, connection)
            document = session_document(session, organization, user)
            token = handoff_token(session, organization, user, document)
            blue_url = organization.blue_url
    except LoginRefusedError as error:
        # The rollback expired `connection`: read it again for the audit.
        with unit_of_work() as session:
            live = session.get(IdpConnection, connection_id)
        return refuse(live, error.reason, error.detail)
    response: BaseResponse
    console_path = safe_return_to(return_to)
    if console_path is not None and console_path.startswith(CONSOLE_PATH):
        response = redirect(console_path)  # a sign-in to our own console: no hand-off
    elif token is not None and blue_url is not None:
        body = render_template(
            "sso_handoff.html", action=blue_url, token=token, return_to=safe_return_to(return_to)
        )
        response = Response(body, content_type="text/html; charset=utf-8")
        allow_form_target(blue_url)
    else:
        response = redirect(url_for("sso.get_session"))
    response.headers["Cache-Control"] = "no-store"
    return with_session_cookie(response, session_id)


def with_session_cookie(response: BaseResponse, session_id: str) -> BaseResponse:
    """The response, carrying the new session's id in its HttpOnly cookie."""
    response.set_cookie(
        sessions.COOKIE,
        session_id,
        max_age=int(sessions.LIFETIME.total_seconds()),
        httponly=True,
        secure=settings().base_url.startswith("https://"),
        samesite="Lax",
        path="/",
    )
    return response


def session_document(
    session: Session, organization: Organization, user: UserRow
) -> dict[str, object]:
    """What /sso/session and the hand-off say about a signed-in user."""
    groups = session.scalars(
        select(Group.display_name)
        .join(Membership, Membership.group_id == Group.id)
        .where(Membership.user_id == user.id)
        .order_by(Group.display_name_key)
    ).all()
    roles = {
        a.project_key: a.role_key
        for a in session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id))
    }
    return {
        "user": {
            "id": str(user.id),
            "userName": user.user_name,
            "email": user.primary_email,
            "name": user.display_name,
        },
        "organization": {"slug": organization.slug, "name": organization.name},
        "groups": list(groups),
        "roles": roles,
        "seat": user.seat,
    }


@bp.route("/", methods=["GET", "POST"], strict_slashes=False)
def start_page() -> ResponseReturnValue:
    """Find the organization from the email's domain and send the person to its IdP."""
    email = (request.values.get("email") or "").strip()
    if request.method == "GET" and not email:
        return render_template("sso_start.html", connections=[], email="", message=None)
    domain = email.rsplit("@", 1)[1].lower() if "@" in email else ""
    with unit_of_work() as session:
        found = session.get(OrgDomain, domain) if domain else None
        connections = []
        if found is not None:
            connections = [
                {"name": c.name, "login_url": sp_urls(c)["login_url"]}
                for c in session.scalars(
                    select(IdpConnection)
                    .where(IdpConnection.org_id == found.org_id, IdpConnection.is_enabled)
                    .order_by(IdpConnection.name)
                )
            ]
    if not connections:
        message = "We could not find single sign-on for that email address."
        return render_template(
            "sso_start.html", connections=[], email=email, message=message
        ), HTTPStatus.NOT_FOUND
    if len(connections) == 1:
        return redirect(connections[0]["login_url"])
    return render_template("sso_start.html", connections=connections, email=email, message=None)


@bp.get("/session")
def get_session() -> ResponseReturnValue:
    """200 with who is signed in, or 401."""
    with unit_of_work() as session:
        row = sessions.current(session, request.cookies.get(sessions.COOKIE))
        if row is None:
            return jsonify({"error": "not signed in"}), HTTPStatus.UNAUTHORIZED
        organization = session.get(Organization, row.org_id)
        user = session.get(UserRow, row.user_id)
        assert organization is not None and user is not None
        document = session_document(session, organization, user)
    return jsonify(document)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    """End this service's session."""
    with unit_of_work() as session:
        sessions.end(session, request.cookies.get(sessions.COOKIE), actor_for(None))
    response = jsonify({"status": "signed out"})
    response.delete_cookie(sessions.COOKIE, path="/")
    return response
