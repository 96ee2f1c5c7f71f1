"""/Groups (RFC 7643 §4.2): how groups are listed and shown with their members, and PATCH."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, select

from app.models import Group, Membership, User
from app.provisioning import GroupSpec, MemberChange, ProvisioningService
from scim import discovery, resources
from scim.filters import group_filter, group_sort_key
from scim.operations.context import Context, Outcome
from scim.operations.listing import Page, Query, page_of
from scim.operations.resource_types import (
    ResourceType,
    fetch_for_change,
    patched,
    resource_headers,
)
from scim.patch import apply_group_patch
from scim.resources import etag, project, wants


def _render(context: Context, groups: Sequence[Group], page: Page) -> list[dict[str, Any]]:
    """Project each group, with its members (one query for the page) when asked for."""
    load_members = wants(discovery.GROUP_SCHEMA, page.attributes, page.excluded, "members")
    members: dict[UUID, list[tuple[str, str | None]]] = defaultdict(list)
    if load_members and groups:
        rows = context.session.execute(
            select(Membership.group_id, User.id, User.user_name)
            .join(User, User.id == Membership.user_id)
            .where(Membership.group_id.in_([g.id for g in groups]))
            .order_by(Membership.group_id, User.user_name_key)
        )
        for group_id, user_id, user_name in rows:
            members[group_id].append((str(user_id), user_name))
    return [
        project(
            resources.group_to_scim(g, context.base_url, members[g.id] if load_members else None),
            discovery.GROUP_SCHEMA,
            page.attributes,
            page.excluded,
        )
        for g in groups
    ]


def _render_listed(
    context: Context, rows: Sequence[tuple[Group, Any]], page: Page
) -> list[dict[str, Any]]:
    return _render(context, [group for group, _ in rows], page)


def _carried(page: Page) -> ColumnElement[Any] | None:
    return None  # members are read for the whole page in one query by _render


def _listed(org_id: UUID) -> list[ColumnElement[bool]]:
    return [Group.org_id == org_id]


def _outcome(context: Context, group: Group, query: Query, status: int) -> Outcome:
    """One group as a response, with its members when asked for."""
    [body] = _render(context, [group], page_of(query, context.settings.scim_max_results))
    return Outcome(body, status, resource_headers(context, GROUPS.endpoint, group, status))


def patch_group(
    context: Context, group_id: str, body: Any, query: Query, if_match: str | None
) -> Outcome:
    """PATCH /Groups/{id} (RFC 7644 §3.5.2): attributes like a PUT, members as changes."""
    group, expected = fetch_for_change(context, GROUPS, group_id, if_match)
    document = resources.group_to_scim(group, context.base_url, members=None)
    document, changes = patched(apply_group_patch, document, body)
    spec = resources.group_spec_from_scim(document, with_members=False)
    members = MemberChange(added=changes.added, removed=changes.removed, replaced=changes.replaced)
    group = context.service.update_group(group.id, spec, members, expected)
    if query.attributes or query.excluded_attributes:
        return _outcome(context, group, query, HTTPStatus.OK)
    # RFC 7644 §3.5.2: 204 is allowed; returning a 50,000-member group on every change is not.
    return Outcome(None, HTTPStatus.NO_CONTENT, {"ETag": etag(group.version)})


GROUPS: ResourceType[Group, GroupSpec] = ResourceType(
    endpoint="Groups",
    name="group",
    model=Group,
    read_spec=resources.group_spec_from_scim,
    fetch=ProvisioningService.get_group,
    create=ProvisioningService.create_group,
    replace=ProvisioningService.replace_group,
    delete=ProvisioningService.delete_group,
    patch=patch_group,
    listed=_listed,
    filter=group_filter,
    sort_key=group_sort_key,
    carried=_carried,
    render=_render_listed,
    outcome=_outcome,
)
