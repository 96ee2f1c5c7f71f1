"""The directory pages: users (search, filters, keyset paging), one user's page, groups with
their member counts and the mapping rules that use them, one group's page. Read-only, for
org admins and security reviewers alike."""

from __future__ import annotations

from http import HTTPStatus
from uuid import UUID

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

import licensing
from app.admin.queries import list_projects
from app.console import bp, queries
from app.console.auth import console_actor, console_user, reader
from app.db import read_only_unit
from app.models import Organization
from app.provisioning import ProvisioningService


def _catalogue(session: Session, organization: Organization) -> licensing.RoleCatalogue:
    """The organization's roles (built-in and custom), asked of the service: a read."""
    return ProvisioningService(session, organization, console_actor()).catalogue()


def _organization(session: Session) -> Organization:
    organization = session.get(Organization, console_user().org_id)
    assert organization is not None  # the console session names a live organization
    return organization


def _cursor() -> str | None:
    """The `after` parameter: a cursor of ours, or a 400 page."""
    cursor = request.args.get("after") or None
    if cursor is not None:
        try:
            queries.decode_cursor(cursor)
        except ValueError:
            abort(HTTPStatus.BAD_REQUEST, "This page link is not valid. Start from page one.")
    return cursor


@bp.get("/users")
@reader
def users() -> ResponseReturnValue:
    """The organization's users by userName: search, filters as GET parameters, 50 a page."""
    filters = queries.UserFilters.from_args(request.args)
    cursor = _cursor()
    with read_only_unit() as session:
        organization = _organization(session)
        page = queries.user_page(session, organization.id, filters, cursor)
        return render_template(
            "console/users.html",
            page=page,
            filters=filters,
            is_later_page=cursor is not None,
            roles=_catalogue(session, organization).roles,
            projects=list_projects(session, organization),
            seats=queries.SEAT_CHOICES,
            statuses=queries.STATUS_CHOICES,
            sources=queries.SOURCE_CHOICES,
        )


@bp.get("/users/<uuid:user_id>")
@reader
def user(user_id: UUID) -> ResponseReturnValue:
    """One user: profile, groups, roles per project with the group that granted each, why
    the seat is paid, seat history and audit trail. Another organization's user is 404."""
    with read_only_unit() as session:
        organization = _organization(session)
        detail = queries.user_detail(
            session, organization, _catalogue(session, organization), user_id
        )
        if detail is None:
            abort(HTTPStatus.NOT_FOUND)
        return render_template("console/user.html", detail=detail)


@bp.get("/groups")
@reader
def groups() -> ResponseReturnValue:
    """The organization's groups by name, with member counts and the rules that use them."""
    q = (request.args.get("q") or "").strip()[:256]
    cursor = _cursor()
    with read_only_unit() as session:
        organization = _organization(session)
        page = queries.group_page(
            session, organization.id, _catalogue(session, organization), q, cursor
        )
        return render_template(
            "console/groups.html", page=page, q=q, is_later_page=cursor is not None
        )


@bp.get("/groups/<uuid:group_id>")
@reader
def group(group_id: UUID) -> ResponseReturnValue:
    """One group: its rules and its members, 50 a page. Another organization's group is 404."""
    cursor = _cursor()
    with read_only_unit() as session:
        organization = _organization(session)
        detail = queries.group_detail(
            session, organization.id, _catalogue(session, organization), group_id, cursor
        )
        if detail is None:
            abort(HTTPStatus.NOT_FOUND)
        return render_template(
            "console/group.html", detail=detail, is_later_page=cursor is not None
        )
