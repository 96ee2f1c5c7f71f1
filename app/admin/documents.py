"""JSON documents of the admin API and the CLI's --json output: one shape for both."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import licensing
from app.admin.changes import DryRun
from app.models import (
    CustomRole,
    HeldChange,
    MappingRule,
    Organization,
    Project,
    WebhookEndpoint,
)
from app.provisioning.webhooks import DeliveryView


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def project(row: Project) -> dict[str, Any]:
    return {"key": row.key, "name": row.name, "created_at": _iso(row.created_at)}


def custom_role(row: CustomRole) -> dict[str, Any]:
    return {
        "key": row.key,
        "slug": row.key.removeprefix(licensing.CUSTOM_KEY_PREFIX),
        "name": row.name,
        "rank": row.rank,
        "description": row.description,
        "permissions": list(row.permissions),
        "paid": True,
        "created_at": _iso(row.created_at),
    }


def role(entry: licensing.Role) -> dict[str, Any]:
    return {
        "key": entry.key,
        "name": entry.name,
        "rank": entry.rank,
        "paid": entry.is_paid,
        "custom": entry.is_custom,
    }


def catalogue(roles: licensing.RoleCatalogue) -> list[dict[str, Any]]:
    """Every role, highest rank first."""
    return [role(entry) for entry in roles.roles]


def rule(row: MappingRule, roles: licensing.RoleCatalogue | None = None) -> dict[str, Any]:
    found = roles.find(row.role_key) if roles is not None else None
    return {
        "id": str(row.id),
        "match": row.match,
        "group": row.group_value,
        "role": row.role_key,
        "role_name": found.name if found is not None else None,
        "project": row.project_key,
        "priority": row.priority,
        "created_at": _iso(row.created_at),
        "bound_group": bound_group(row),
    }


def bound_group(row: MappingRule) -> dict[str, Any] | None:
    """The group a rule follows: its id, externalId and current name (None once deleted);
    None while the rule is bound to no group (`match: id` rules name theirs already)."""
    if row.bound_group_id is None:
        return None
    group = row.bound_group
    return {
        "id": str(row.bound_group_id),
        "external_id": row.bound_external_id,
        "display_name": group.display_name if group is not None else None,
        "deleted": group is None,
    }


def default_role(organization: Organization, roles: licensing.RoleCatalogue) -> dict[str, Any]:
    key = organization.default_role_key
    found = roles.find(key) if key is not None else None
    return {"role": key, "role_name": found.name if found is not None else None}


def guard(organization: Organization) -> dict[str, Any]:
    return {
        "max_new_paid_seats": organization.guard_max_new_paid_seats,
        "max_new_paid_share": organization.guard_max_new_paid_share,
        "max_new_project_admins": organization.guard_max_new_project_admins,
        "window_minutes": organization.guard_window_minutes,
        "max_new_paid_seats_in_window": organization.guard_max_new_paid_seats_in_window,
    }


def contract(organization: Organization) -> dict[str, Any]:
    return {
        "paid_seats": organization.paid_seat_tier,
        "policy": organization.overage_policy,
        "billing_terms": organization.billing_terms,
        "starts_on": _iso(organization.contract_starts_on),
        "ends_on": _iso(organization.contract_ends_on),
        "guard": guard(organization),
    }


def held_change(row: HeldChange, with_users: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": str(row.id),
        "status": row.status,
        "kind": row.kind,
        # The staged change (kind rule_create, rule_update, default_role) as proposed, or
        # where a directory change's held grants came from.
        "change": dict(row.payload),
        "reason": row.reason,
        "cause": row.cause,
        "reasons": list(row.reasons),
        "user_count": len(row.user_ids),
        "new_paid_seats": row.new_paid_seats,
        "new_project_admins": row.new_project_admins,
        "created_at": _iso(row.created_at),
        "decided_at": _iso(row.decided_at),
        "decided_by": row.decided_by,
    }
    if with_users:
        document["user_ids"] = list(row.user_ids)
    return document


def _totals(totals: licensing.SeatTotals) -> dict[str, int]:
    return {"paid": totals.paid, "free": totals.free, "pending": totals.pending}


def dry_run(outcome: DryRun, user_names: Mapping[str, str], limit: int) -> dict[str, Any]:
    """Users whose roles or seat would change (at most `limit`), totals (counting only what
    would really be applied), and the grants the guard would hold."""
    result = outcome.result
    users = [
        {
            "id": change.user_id,
            "userName": user_names.get(change.user_id),
            "roles": [_role_change(c) for c in change.role_changes],
            "seat": {"before": change.seat_before.value, "after": change.seat_after.value},
            "pending": {"before": change.is_pending_before, "after": change.is_pending_after},
        }
        for change in result.changes[:limit]
    ]
    return {
        "changed_users": len(result.changes),
        "users": users,
        "truncated": len(result.changes) > limit,
        "totals": {
            "before": _totals(result.totals_before),
            "after": _totals(result.totals_after),
        },
        "would_hold": [
            {
                "reason": held.reason,
                "reasons": list(held.reasons),
                "user_count": held.user_count,
                "new_paid_seats": held.new_paid_seats,
                "new_project_admins": held.new_project_admins,
            }
            for held in outcome.held
        ],
        "held": _held_users(result, user_names, limit),
    }


def _role_change(change: licensing.RoleChange) -> dict[str, Any]:
    return {
        "project": change.project,
        "before": change.role_before,
        "after": change.role_after,
        "change": change.kind.value,
    }


def _held_users(
    result: licensing.DryRunResult, user_names: Mapping[str, str], limit: int
) -> list[dict[str, Any]]:
    """Per user, the grants the guard would hold: not applied, not in the totals after."""
    grants: dict[str, list[licensing.RoleChange]] = {}
    paid: set[str] = set()
    for held in result.held:
        for change in held.grants:
            grants.setdefault(change.user_id, []).append(change)
        paid.update(held.new_paid_seat_user_ids)
        for user_id in held.new_paid_seat_user_ids:
            grants.setdefault(user_id, [])
    return [
        {
            "id": user_id,
            "userName": user_names.get(user_id),
            "roles": [_role_change(c) for c in changes],
            "paid_seat": user_id in paid,
        }
        for user_id, changes in sorted(grants.items())[:limit]
    ]


def webhook(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint, never its secrets; `rotating_until`: the previous secret signs too until."""
    rotating = endpoint.encrypted_previous_secret is not None
    return {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": endpoint.event_types,
        "enabled": endpoint.is_enabled,
        "rotating_until": _iso(endpoint.previous_secret_until) if rotating else None,
        "created_at": _iso(endpoint.created_at),
    }


def delivery(view: DeliveryView) -> dict[str, Any]:
    """A delivery of one event to one endpoint, with its last attempt's answer."""
    row = view.delivery
    return {
        "event_id": str(row.event_id),
        "type": view.event_type,
        "seq": row.seq,
        "webhook_id": str(row.endpoint_id),
        "url": view.url,
        "state": row.state,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_attempt_at": _iso(row.next_attempt_at),
        "delivered_at": _iso(row.delivered_at),
    }
