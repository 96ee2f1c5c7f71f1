"""/Users (RFC 7643 §4.1): how users are listed and shown with their groups, and PATCH."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Uuid, bindparam, select
from sqlalchemy.orm import InstrumentedAttribute

from app.db import json_rows
from app.models import Group, Membership, User
from app.provisioning import ProvisioningService, UserSpec
from scim import discovery, resources
from scim.filters import user_filter, user_sort_key
from scim.operations.context import Context, Outcome
from scim.operations.listing import Page, Query, page_of
from scim.operations.resource_types import (
    ResourceType,
    fetch_for_change,
    patched,
    resource_headers,
)
from scim.patch import apply_user_patch
from scim.resources import project, wants


def _groups_of(user_id: ColumnElement[UUID] | InstrumentedAttribute[UUID]) -> Any:
    """A scalar subquery: the groups of `user_id` as JSON (`json_rows`), decoded by _groups."""
    return (
        select(json_rows(Group.id, Group.display_name, Group.display_name_key))
        .select_from(Membership)
        .join(Group, Group.id == Membership.group_id)
        .where(Membership.user_id == user_id)
        .scalar_subquery()
    )


# Built once: a page of users carries each user's groups in its own statement, and a single
# user's are read by the second.
_GROUPS_OF_LISTED_USER = _groups_of(User.id)
_GROUPS_OF_ONE = select(_groups_of(bindparam("user_id", type_=Uuid())))


def _groups(value: Sequence[Sequence[str]] | None) -> list[tuple[str, str]]:
    """(id, displayName) pairs from `_groups_of`, by display name (RFC 7643 §4.1.2 `groups`)."""
    rows = sorted(value or (), key=lambda row: row[2])
    return [(str(UUID(group_id)), display_name) for group_id, display_name, _ in rows]


def _wants_groups(page: Page) -> bool:
    return wants(discovery.USER_SCHEMA, page.attributes, page.excluded, "groups")


def _render(
    context: Context,
    rows: Sequence[tuple[User, list[tuple[str, str]] | None]],
    page: Page,
) -> list[dict[str, Any]]:
    """Project each user with their groups (None: not asked for, so not loaded)."""
    return [
        project(
            resources.user_to_scim(user, context.base_url, groups),
            discovery.USER_SCHEMA,
            page.attributes,
            page.excluded,
        )
        for user, groups in rows
    ]


def _render_listed(
    context: Context, rows: Sequence[tuple[User, Any]], page: Page
) -> list[dict[str, Any]]:
    """A page of users, each with the groups its row carried (when they were asked for)."""
    load_groups = _wants_groups(page)
    users = [(user, _groups(groups) if load_groups else None) for user, groups in rows]
    return _render(context, users, page)


def _carried(page: Page) -> ColumnElement[Any] | None:
    return _GROUPS_OF_LISTED_USER if _wants_groups(page) else None


def _listed(org_id: UUID) -> list[ColumnElement[bool]]:
    return [User.org_id == org_id, User.deprovisioned_at.is_(None)]


def _outcome(context: Context, user: User, query: Query, status: int) -> Outcome:
    """One user as a response, with their groups when asked for."""
    page = page_of(query, context.settings.scim_max_results)
    groups: list[tuple[str, str]] | None = None
    if status == HTTPStatus.CREATED:
        groups = []  # A user just created belongs to no group yet: nothing to load.
    elif _wants_groups(page):
        groups = _groups(context.session.scalar(_GROUPS_OF_ONE, {"user_id": user.id}))
    [body] = _render(context, [(user, groups)], page)
    return Outcome(body, status, resource_headers(context, USERS.endpoint, user, status))


def patch_user(
    context: Context, user_id: str, body: Any, query: Query, if_match: str | None
) -> Outcome:
    """PATCH /Users/{id} (RFC 7644 §3.5.2): the patched document is stored like a PUT."""
    user, expected = fetch_for_change(context, USERS, user_id, if_match)
    document = resources.user_to_scim(user, context.base_url, groups=None)
    spec = resources.user_spec_from_scim(patched(apply_user_patch, document, body))
    user = context.service.replace_user(user.id, spec, expected)
    return _outcome(context, user, query, HTTPStatus.OK)


USERS: ResourceType[User, UserSpec] = ResourceType(
    endpoint="Users",
    name="user",
    model=User,
    read_spec=resources.user_spec_from_scim,
    fetch=ProvisioningService.get_user,
    create=ProvisioningService.create_user,
    replace=ProvisioningService.replace_user,
    delete=ProvisioningService.delete_user,
    patch=patch_user,
    listed=_listed,
    filter=user_filter,
    sort_key=user_sort_key,
    carried=_carried,
    render=_render_listed,
    outcome=_outcome,
)
