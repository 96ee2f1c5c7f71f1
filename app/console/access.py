"""Getting in and out of the console: sign-in through the organization's SSO, the one-time
bootstrap link, sign-out, and which IdP groups grant which console role."""

from __future__ import annotations

from http import HTTPStatus

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.audit import Actor
from app.console import bp, error_page, lookups
from app.console.auth import admin, begin, console_actor, console_user, forget, public, reader
from app.db import read_only_unit, unit_of_work
from app.errors import LoginRefusedError, ProvisioningError
from app.logs import current_request_id
from app.models import ConsoleSession
from app.provisioning import ProvisioningService
from app.provisioning.console import ConsoleRole, redeem_link
from app.provisioning.sessions import SSO_COOKIE, live_session

REASONS = {
    "idle": "You were signed out after 30 minutes without activity.",
    "ended": "Your console session has ended. Sign in again.",
    "signed_out": "You are signed out.",
}


def browser_actor(label: str) -> Actor:
    return Actor(
        kind="console",
        label=label,
        request_id=current_request_id(),
        source_ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


@bp.get("/sign-in")
@public
def sign_in() -> ResponseReturnValue:
    """Find the organization by work email or slug and offer its SSO connections."""
    org_or_email = (request.args.get("org") or "").strip()
    options = []
    if org_or_email:
        with read_only_unit() as session:
            options = lookups.sign_in_options(session, org_or_email)
    status = HTTPStatus.NOT_FOUND if org_or_email and not options else HTTPStatus.OK
    message = REASONS.get(request.args.get("reason") or "")
    return render_template(
        "console/sign_in.html", org=org_or_email, options=options, message=message
    ), status


@bp.get("/sso")
@public
def sso_return() -> ResponseReturnValue:
    """Back from the organization's IdP: open a console session for the SSO session's user
    when their groups grant a console role."""
    try:
        with unit_of_work() as session:
            found = live_session(session, request.cookies.get(SSO_COOKIE))
            if found is None:
                return redirect(url_for("console.sign_in", reason="ended"))
            row, user = found
            actor = browser_actor(user.primary_email or user.user_name)
            opened = ProvisioningService(session, row.org_id, actor).open_console_session(user)
            begin(opened)
    except LoginRefusedError as error:
        return error_page("No console access", error.detail, HTTPStatus.FORBIDDEN)
    return redirect(url_for("console.index"))


@bp.get("/link/<secret>")
@public
def link(secret: str) -> ResponseReturnValue:
    """A bootstrap link asks for one click: a mail scanner opening it must not use it up."""
    return render_template("console/link.html", secret=secret)


@bp.post("/link/<secret>")
@public
def redeem(secret: str) -> ResponseReturnValue:
    """Sign in with a bootstrap link: once, within 15 minutes."""
    try:
        with unit_of_work() as session:
            opened = redeem_link(session, secret, browser_actor("bootstrap link"))
            begin(opened)
    except LoginRefusedError as error:
        forget()
        return error_page("Sign-in link refused", error.detail, HTTPStatus.FORBIDDEN)
    return redirect(url_for("console.index"))


@bp.post("/sign-out")
@reader
def sign_out() -> ResponseReturnValue:
    user = console_user()
    with unit_of_work() as session:
        row = session.get(ConsoleSession, user.session_hash)
        if row is not None:
            service = ProvisioningService(session, user.org_id, console_actor())
            service.end_console_session(row, "signed_out")
    forget()
    return redirect(url_for("console.sign_in", reason="signed_out"))


@bp.get("/access")
@reader
def access() -> ResponseReturnValue:
    """Who is signed in, and which IdP groups grant console roles."""
    user = console_user()
    with read_only_unit() as session:
        grants = lookups.grants(session, user.org_id)
    return render_template("console/access.html", grants=grants, roles=list(ConsoleRole))


@bp.post("/access")
@admin
def grant_access() -> ResponseReturnValue:
    """Grant an IdP group a console role, or take it away ("none")."""
    user = console_user()
    name = (request.form.get("group") or "").strip()
    role_value = request.form.get("role") or ""
    if role_value not in {*ConsoleRole, "none"}:
        flash("Choose admin, reviewer or none.", "error")
        return render_access_error()
    try:
        with unit_of_work() as session:
            group_id = lookups.group_named(session, user.org_id, name)
            if group_id is None:
                flash(f"There is no group named {name!r}.", "error")
                return render_access_error()
            role = None if role_value == "none" else ConsoleRole(role_value)
            ProvisioningService(session, user.org_id, console_actor()).grant_console_role(
                group_id, role
            )
    except ProvisioningError as error:
        flash(error.detail, "error")
        return render_access_error()
    flash(f"Members of {name} now have console role: {role_value}.", "info")
    return redirect(url_for("console.access"), HTTPStatus.SEE_OTHER)


def render_access_error() -> ResponseReturnValue:
    user = console_user()
    with read_only_unit() as session:
        grants = lookups.grants(session, user.org_id)
    body = render_template("console/access.html", grants=grants, roles=list(ConsoleRole))
    return body, HTTPStatus.BAD_REQUEST
