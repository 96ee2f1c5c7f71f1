"""The audit trail's vocabulary: action names, target types and payload keys, defined once.

The writers record events with these names and the reports replay them by the same names.
They are `StrEnum`s and plain strings, so events serialize (and hash) exactly as the literal
strings they replace: renaming a value would change the record and break old replays.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Action(StrEnum):
    """Every action the service records in the audit trail."""

    USER_CREATED = "user.created"
    USER_RELINKED = "user.relinked"
    USER_UPDATED = "user.updated"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    USER_DELETED = "user.deleted"

    GROUP_CREATED = "group.created"
    GROUP_UPDATED = "group.updated"
    GROUP_DELETED = "group.deleted"
    MEMBERSHIP_ADDED = "membership.added"
    MEMBERSHIP_REMOVED = "membership.removed"

    ROLE_GRANTED = "role.granted"
    ROLE_CHANGED = "role.changed"
    ROLE_REVOKED = "role.revoked"
    SEAT_CHANGED = "seat.changed"

    CHANGE_HELD = "change.held"
    CHANGE_CONFIRMED = "change.confirmed"
    CHANGE_DISCARDED = "change.discarded"

    LOGIN_ACCEPTED = "login.accepted"
    LOGIN_LINKED = "login.linked"
    LOGIN_REFUSED = "login.refused"
    LOGIN_GROUPS_OVERAGE = "login.groups_overage"
    SESSION_ENDED = "session.ended"

    CONNECTION_CREATED = "connection.created"
    CONNECTION_UPDATED = "connection.updated"
    CONNECTION_DELETED = "connection.deleted"
    CONNECTION_SECRET_ROTATED = "connection.secret_rotated"
    CONNECTION_TESTED = "connection.tested"

    ORG_CREATED = "org.created"
    ORG_CONTRACT_CHANGED = "org.contract_changed"
    ORG_DEFAULT_ROLE_CHANGED = "org.default_role_changed"
    ORG_DOMAIN_ADDED = "org.domain_added"
    ORG_DOMAIN_REMOVED = "org.domain_removed"
    ORG_GUARD_CHANGED = "org.guard_changed"
    ORG_SSO_CHANGED = "org.sso_changed"

    PROJECT_CREATED = "project.created"
    PROJECT_UPDATED = "project.updated"
    PROJECT_DELETED = "project.deleted"
    CUSTOM_ROLE_CREATED = "custom_role.created"
    CUSTOM_ROLE_UPDATED = "custom_role.updated"
    CUSTOM_ROLE_DELETED = "custom_role.deleted"
    RULE_CREATED = "rule.created"
    RULE_UPDATED = "rule.updated"
    RULE_DELETED = "rule.deleted"
    RULE_BOUND = "rule.bound"

    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    HANDOFF_KEY_CREATED = "handoff.key_created"
    HANDOFF_KEY_RETIRED = "handoff.key_retired"

    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_REPLAYED = "webhook.replayed"

    CONSOLE_LINK_CREATED = "console.link_created"
    CONSOLE_SIGNED_IN = "console.signed_in"
    CONSOLE_SIGNED_OUT = "console.signed_out"
    CONSOLE_ACCESS_CHANGED = "console.access_changed"


class Target(StrEnum):
    """What an event is about (its `target_type`)."""

    USER = "user"
    GROUP = "group"
    ORGANIZATION = "organization"
    CONNECTION = "connection"
    PROJECT = "project"
    CUSTOM_ROLE = "custom_role"
    RULE = "rule"
    HELD_CHANGE = "held_change"
    TOKEN = "token"
    SIGNING_KEY = "signing_key"
    WEBHOOK = "webhook"
    CONSOLE = "console"


class UserKey:
    """Keys of the user events' payloads (user.created … user.deleted)."""

    USER_NAME: Final = "user_name"
    ACTIVE: Final = "active"
    GROUPS_LEFT: Final = "groups_left"  # user.deleted: the groups it left without member events


class GroupKey:
    """Keys of the group and membership events' payloads."""

    DISPLAY_NAME: Final = "display_name"
    USER_ID: Final = "user_id"  # membership.added / membership.removed: the member


class BindingKey:
    """Keys of the rule.bound payloads: the group a rule follows (None: no group yet)."""

    GROUP_ID: Final = "group_id"
    EXTERNAL_ID: Final = "external_id"
    DISPLAY_NAME: Final = "display_name"  # the group's name when the rule bound to it
    REASON: Final = "reason"  # after only: what made the rule (re)bind


class AccessKey:
    """Keys of the role.* and seat.changed payloads."""

    PROJECT: Final = "project"
    ROLE: Final = "role"
    SOURCES: Final = "sources"
    REASON: Final = "reason"
    SEAT: Final = "seat"
    PENDING: Final = "pending"
    OVERAGE: Final = "overage"


class SourceKey:
    """Keys of one entry of an assignment's `sources`: the rule and group behind a role."""

    RULE_ID: Final = "rule_id"
    GROUP_ID: Final = "group_id"


class OutboxType(StrEnum):
    """Every event Blue receives (webhooks and the pull feed, both read `outbox_events`).

    Each carries the new state of its subject, never a diff: a consumer that missed events
    converges on the latest one of each type. Within one transaction a user's events of one
    type are coalesced into the last, with the final state (app.outbox). Payloads (`data`):

    - user.provisioned: created, or relinked (`relinked` true) after a delete; the user's
      state as below.
    - user.updated / user.deactivated / user.reactivated / user.deleted: the user's state:
      `user_name`, `external_id`, `email`, `display_name`, `given_name`, `family_name`,
      `active`, `deleted`, `source`.
    - access.changed: `roles`, every project's role now (`project`, `role`, `sources`: the
      `rule_id` and `group_id` of each rule and group behind it; none for the organization's
      default role), and the `reason`; `roles` is empty when the user has no role left.
    - seat.changed: `seat` (paid, free or none), `pending`, `overage`, `status` (pending
      when waiting for a paid seat, else paid, free or released) and the `reason`.
    - organization.contract_changed: the contract now: `paid_seat_tier`, `policy`,
      `billing_terms`, `starts_on`, `ends_on` (no subject user).
    """

    USER_PROVISIONED = "user.provisioned"
    USER_UPDATED = "user.updated"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    USER_DELETED = "user.deleted"
    ACCESS_CHANGED = "access.changed"
    SEAT_CHANGED = "seat.changed"
    CONTRACT_CHANGED = "organization.contract_changed"


# The outbox event each audited change of a user emits, with the user's state.
USER_OUTBOX_TYPES: Final[dict[Action, OutboxType]] = {
    Action.USER_CREATED: OutboxType.USER_PROVISIONED,
    Action.USER_RELINKED: OutboxType.USER_PROVISIONED,
    Action.USER_UPDATED: OutboxType.USER_UPDATED,
    Action.USER_DEACTIVATED: OutboxType.USER_DEACTIVATED,
    Action.USER_REACTIVATED: OutboxType.USER_REACTIVATED,
    Action.USER_DELETED: OutboxType.USER_DELETED,
}


class OutboxKey:
    """Keys of the outbox events' payloads that are not the audit trail's."""

    EMAIL: Final = "email"
    DELETED: Final = "deleted"
    SOURCE: Final = "source"
    RELINKED: Final = "relinked"
    ROLES: Final = "roles"
    STATUS: Final = "status"
