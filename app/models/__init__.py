"""ORM models: the only place tables are described (schema changes go through Alembic). The
package re-exports every model, so `from app.models import X` names any of them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from licensing import Assignment, Seat, Source
from licensing import BillingTerms as BillingTerms
from licensing import OveragePolicy as OveragePolicy

SeatKind = Seat


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    paid_seat_tier: Mapped[int] = mapped_column(default=0)
    contract_starts_on: Mapped[date | None]
    contract_ends_on: Mapped[date | None]
    billing_terms: Mapped[str] = mapped_column(String(20), default=BillingTerms.ANNUAL)
    overage_policy: Mapped[str] = mapped_column(String(10), default=OveragePolicy.ALLOW)
    default_role_key: Mapped[str | None] = mapped_column(String(80))
    # Paid seats held right now. Every seat change locks this row first (SELECT ... FOR UPDATE),
    # so two concurrent requests can never both take the last paid seat.
    paid_seat_count: Mapped[int] = mapped_column(default=0)
    # Mass-grant guard: one change granting more than this is held for an admin's confirmation.
    guard_max_new_paid_seats: Mapped[int] = mapped_column(default=50)
    guard_max_new_paid_share: Mapped[float] = mapped_column(default=0.2)
    guard_max_new_project_admins: Mapped[int] = mapped_column(default=10)
    # ... and more than this many new paid seats within the window, over any number of
    # requests, holds the change that crosses it (0 minutes: no window).
    guard_window_minutes: Mapped[int] = mapped_column(default=10)
    guard_max_new_paid_seats_in_window: Mapped[int] = mapped_column(default=100)
    # Where a successful SSO login hands the user to Blue.
    blue_url: Mapped[str | None] = mapped_column(String(1024))
    # False for organizations whose groups come by SCIM push: SSO then leaves them alone.
    sso_manages_groups: Mapped[bool] = mapped_column(default=True)
    # A login that leaves the user with no role: "refuse", or "default" (the default role).
    sso_no_role_policy: Mapped[str] = mapped_column(String(10), default="refuse")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ScimToken]] = relationship(back_populates="organization")


class ContractVersion(Base):
    """One version of an organization's contract, in force from `effective_at` (the moment it
    was set) until the next version's. Append-only; the newest version is always what the
    organization's own contract columns hold, which the hot paths read."""

    __tablename__ = "contract_versions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    effective_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_seat_tier: Mapped[int]
    overage_policy: Mapped[str] = mapped_column(String(10))
    billing_terms: Mapped[str] = mapped_column(String(20))
    contract_starts_on: Mapped[date | None]
    contract_ends_on: Mapped[date | None]

    __table_args__ = (
        Index("ix_contract_versions_org_id_effective_at", "org_id", "effective_at", "id"),
    )


class ScimToken(Base):
    __tablename__ = "scim_tokens"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token, hex: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # None: until revoked
    # A read-only token (for audits and reviews) gets 403 on every change.
    is_read_only: Mapped[bool] = mapped_column(default=False)
    # "scim" tokens provision through /scim/v2; "admin" tokens configure through /api/v1.
    # Kept apart so the token pasted into an IdP cannot change rules, contract or the guard.
    scope: Mapped[str] = mapped_column(String(8), default="scim")

    organization: Mapped[Organization] = relationship(back_populates="tokens")

    __table_args__ = (UniqueConstraint("org_id", "label"),)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class UserSource(StrEnum):
    SCIM = "scim"
    SSO = "sso"
    CSV = "csv"
    ADMIN = "admin"


class User(Base):
    """A person in an organization's directory; deprovisioned users are kept for history."""

    __tablename__ = "users"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    user_name: Mapped[str] = mapped_column(String(256))
    # lower(user_name): userName is caseExact=false (RFC 7643 §4.1.1) and unique per organization.
    user_name_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(default=True)
    deprovisioned_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(10), default=UserSource.SCIM)

    display_name: Mapped[str | None] = mapped_column(String(256))
    display_name_key: Mapped[str | None] = mapped_column(String(256))
    given_name: Mapped[str | None] = mapped_column(String(256))
    family_name: Mapped[str | None] = mapped_column(String(256))
    middle_name: Mapped[str | None] = mapped_column(String(256))
    formatted_name: Mapped[str | None] = mapped_column(String(512))
    honorific_prefix: Mapped[str | None] = mapped_column(String(64))
    honorific_suffix: Mapped[str | None] = mapped_column(String(64))
    nick_name: Mapped[str | None] = mapped_column(String(256))
    profile_url: Mapped[str | None] = mapped_column(String(1024))
    title: Mapped[str | None] = mapped_column(String(256))
    user_type: Mapped[str | None] = mapped_column(String(64))
    preferred_language: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    primary_email: Mapped[str | None] = mapped_column(String(320))

    employee_number: Mapped[str | None] = mapped_column(String(128))
    cost_center: Mapped[str | None] = mapped_column(String(128))
    organization_name: Mapped[str | None] = mapped_column(String(256))
    division: Mapped[str | None] = mapped_column(String(256))
    department: Mapped[str | None] = mapped_column(String(256))
    manager_id: Mapped[str | None] = mapped_column(String(256))

    # Multi-valued attributes as sent (emails, phoneNumbers, addresses, photos, roles,
    # x509Certificates); their filterable parts are mirrored in user_values.
    multi_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Extension schemas we do not model, kept verbatim for round-trips: {urn: {attr: value}}.
    extensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    seat: Mapped[str] = mapped_column(String(8), default=SeatKind.NONE)
    pending_since: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # Set when an IdP's group claim overflowed (Entra ID's overage link) at the last login.
    groups_overage_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        UniqueConstraint("org_id", "user_name_key"),
        Index("ix_users_org_id_external_id", "org_id", "external_id"),
        Index("ix_users_org_id_created_at", "org_id", "created_at", "id"),
        # SCIM listing pages through live users only.
        Index(
            "ix_users_live_by_created_at",
            "org_id",
            "created_at",
            "id",
            postgresql_where=text("deprovisioned_at IS NULL"),
            sqlite_where=text("deprovisioned_at IS NULL"),
        ),
        Index("ix_users_org_id_display_name_key", "org_id", "display_name_key"),
        # Promotion order of users waiting for a paid seat. Partial, and no index on `seat`:
        # a seat change then touches no indexed column and PostgreSQL updates the row in
        # place (HOT; the table keeps free space for it, see migration 0009).
        Index(
            "ix_users_org_id_pending_since",
            "org_id",
            "pending_since",
            postgresql_where=text("pending_since IS NOT NULL"),
            sqlite_where=text("pending_since IS NOT NULL"),
        ),
    )

    @property
    def is_deprovisioned(self) -> bool:
        return self.deprovisioned_at is not None


class UserValue(Base):
    """One value of a multi-valued user attribute, kept so filters run as SQL."""

    __tablename__ = "user_values"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    attribute: Mapped[str] = mapped_column(String(32))
    value: Mapped[str | None] = mapped_column(String(1024))
    value_key: Mapped[str | None] = mapped_column(String(1024))
    display: Mapped[str | None] = mapped_column(String(256))
    type: Mapped[str | None] = mapped_column(String(64))
    is_primary: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (Index("ix_user_values_lookup", "org_id", "attribute", "value_key"),)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    display_name: Mapped[str] = mapped_column(String(256))
    display_name_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    extensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        UniqueConstraint("org_id", "display_name_key"),
        Index("ix_groups_org_id_external_id", "org_id", "external_id"),
        Index("ix_groups_org_id_created_at", "org_id", "created_at", "id"),
    )


class Membership(Base):
    __tablename__ = "memberships"

    group_id: Mapped[UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    source: Mapped[str] = mapped_column(String(10), default=UserSource.SCIM)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_memberships_user_id", "user_id", "group_id"),)


class OutboxEvent(Base):
    """A change Blue acts on, in the state it leaves (not a diff), written by the provisioning
    package's `events` module in the change's own transaction and numbered per organization
    (`seq`) in commit order when that transaction commits. Webhooks and the pull feed read it;
    `id` is the event's stable id (Standard Webhooks' `webhook-id`, the idempotency key)."""

    __tablename__ = "outbox_events"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    # None until the transaction commits: only committed events have a place in the order.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[UUID | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_outbox_events_org_id_seq", "org_id", "seq", unique=True),
        Index("ix_outbox_events_user_id", "user_id", "seq"),
    )


class AuditEvent(Base):
    """One recorded change; rows are only ever appended."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[UUID | None] = mapped_column(ForeignKey("organizations.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    # The hash chain, sealed when the writing transaction commits (app/audit.py).
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_org_id_at", "org_id", "at", "id"),
        Index("ix_audit_events_org_id_target", "org_id", "target_type", "target_id"),
        Index("ix_audit_events_chain_seq", "chain", "seq", unique=True),
        # Sealing reads only the transaction's unsealed events, however long the trail grows.
        Index(
            "ix_audit_events_unsealed",
            "chain",
            "id",
            postgresql_where=text("hash IS NULL"),
            sqlite_where=text("hash IS NULL"),
        ),
        Index("ix_audit_events_org_id_action", "org_id", "action", "at"),
    )


class AuditHead(Base):
    """The newest sealed event of each audit chain; its row lock serializes sealing."""

    __tablename__ = "audit_heads"

    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")
    # The organization's last outbox event number: numbered under this row's lock at commit,
    # so the outbox's order is the commit order.
    outbox_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "key"),)


class CustomRole(Base):
    __tablename__ = "custom_roles"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(1000), default="")
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    rank: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "key"),)


class MappingRule(Base):
    """Members of an IdP group get a role in one project, or in every project (`*`)."""

    __tablename__ = "mapping_rules"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    match: Mapped[str] = mapped_column(String(16))
    group_value: Mapped[str] = mapped_column(String(256))
    # lower(group_value) for displayName rules, as given otherwise: what lookups compare.
    group_key: Mapped[str] = mapped_column(String(256))
    role_key: Mapped[str] = mapped_column(String(80))
    project_key: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The group a displayName or externalId rule is bound to since it first matched, and that
    # group's externalId when the IdP sent one; None while no group matches (a rule written
    # before its group exists). No foreign key on purpose: when the group is deleted the rule
    # stays bound to the deleted id and grants nothing, rather than being unbound by a cascade
    # and re-granting through whatever group takes the name next. `rule edit` rebinds.
    bound_group_id: Mapped[UUID | None]
    bound_external_id: Mapped[str | None] = mapped_column(String(256))
    # The bound group while it exists, for the rule's documents (read only; expired whenever
    # the binding changes).
    bound_group: Mapped[Group | None] = relationship(
        primaryjoin="foreign(MappingRule.bound_group_id) == Group.id", viewonly=True
    )

    __table_args__ = (Index("ix_mapping_rules_org_id_bound_group_id", "org_id", "bound_group_id"),)


class RoleAssignment(Base):
    """A user's effective role in a project (`*` = every other project), with its provenance."""

    __tablename__ = "role_assignments"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_key: Mapped[str] = mapped_column(String(64))
    role_key: Mapped[str] = mapped_column(String(80))
    # [{"rule_id": ..., "group_id": ...}]; empty means the organization's default role.
    sources: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "project_key"),
        Index("ix_role_assignments_org_id_role_key", "org_id", "role_key"),
    )

    def as_assignment(self) -> Assignment:
        """This row as the licensing rules see it."""
        return Assignment(
            self.project_key,
            self.role_key,
            tuple(Source(s["rule_id"], s["group_id"]) for s in self.sources),
        )


class SeatEvent(Base):
    """Append-only seat ledger: every change of a user's seat."""

    __tablename__ = "seat_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id"))
    from_seat: Mapped[str] = mapped_column(String(8))
    to_seat: Mapped[str] = mapped_column(String(8))
    is_pending: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(64))
    cause: Mapped[str] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_seat_events_org_id_at", "org_id", "at"),
        Index("ix_seat_events_user_id", "user_id", "at"),
        # Who was pending when: the reports read only the entries that made someone pending.
        Index(
            "ix_seat_events_org_id_pending",
            "org_id",
            "at",
            postgresql_where=text("is_pending"),
            sqlite_where=text("is_pending = 1"),
        ),
        # The guard's sliding window counts the paid seats given in the last minutes.
        Index(
            "ix_seat_events_paid_grants",
            "org_id",
            "at",
            postgresql_where=text("to_seat = 'paid'"),
            sqlite_where=text("to_seat = 'paid'"),
        ),
    )


class RateLimit(Base):
    """Requests counted per key (a SCIM token) in the current fixed window, shared by workers."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_number: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int]


class HeldKind(StrEnum):
    """What a held change holds."""

    # The grants of a directory change (members added, a user reactivated, ...): the
    # directory change itself is applied, only its grants wait.
    DIRECTORY = "directory"
    # A staged admin change, not in force until confirmed: a new rule, a rule edit, a new
    # default role (its `payload` is the change as proposed).
    RULE_CREATE = "rule_create"
    RULE_UPDATE = "rule_update"
    DEFAULT_ROLE = "default_role"


class HeldChange(Base):
    """Grants of one change held by the mass-grant guard until an admin confirms or discards."""

    __tablename__ = "held_changes"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="held")  # held|confirmed|discarded
    kind: Mapped[str] = mapped_column(String(16), default=HeldKind.DIRECTORY)
    # The staged change as proposed (its rule, the rule it edits, the default role), or for a
    # directory change where it came from.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(64))
    cause: Mapped[str] = mapped_column(String(256))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    user_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    new_paid_seats: Mapped[int] = mapped_column(default=0)
    new_project_admins: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(256))

    # The open held changes: what an admin lists, and where a directory change's held grants
    # join the open one of the same source (app/provisioning/access/guard.py).
    __table_args__ = (
        Index(
            "ix_held_changes_open",
            "org_id",
            "created_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
    )


class OrgDomain(Base):
    """An email domain an organization has verified: finds the organization at login."""

    __tablename__ = "org_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdpConnection(Base):
    """One organization's SAML or OIDC identity provider; secrets are encrypted at rest."""

    __tablename__ = "idp_connections"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    protocol: Mapped[str] = mapped_column(String(4))  # saml | oidc
    is_enabled: Mapped[bool] = mapped_column(default=True)
    is_jit_enabled: Mapped[bool] = mapped_column(default=True)
    # Protocol settings without secrets (entity ids, URLs, certificates, claim names, ...).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fernet tokens (app/crypto.py): SAML SP private key, OIDC client secret.
    encrypted_secrets: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "name"),)


class LoginIdentity(Base):
    """The subject an IdP connection asserts for a user: how logins find their user."""

    __tablename__ = "login_identities"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    connection_id: Mapped[UUID] = mapped_column(
        ForeignKey("idp_connections.id", ondelete="CASCADE")
    )
    subject: Mapped[str] = mapped_column(String(512))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("connection_id", "subject"),)


class SsoRequest(Base):
    """An outstanding SP-initiated login: SAML request id or OIDC state, used once."""

    __tablename__ = "sso_requests"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    connection_id: Mapped[UUID] = mapped_column(
        ForeignKey("idp_connections.id", ondelete="CASCADE")
    )
    nonce: Mapped[str | None] = mapped_column(String(128))
    code_verifier: Mapped[str | None] = mapped_column(String(128))
    return_to: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    # Expired requests are purged when new logins start; this keeps that a range scan.
    __table_args__ = (Index("ix_sso_requests_expires_at", "expires_at"),)


class SsoReplay(Base):
    """Assertion ids already accepted, kept until they expire: a replay is refused."""

    __tablename__ = "sso_replays"

    connection_id: Mapped[UUID] = mapped_column(
        ForeignKey("idp_connections.id", ondelete="CASCADE"), primary_key=True
    )
    assertion_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SigningKey(Base):
    """A key that signs hand-off tokens; retired keys stay published until their tokens expire."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(8))
    encrypted_private_key: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class SsoSession(Base):
    """The service's own session after a login; the cookie carries only its random id."""

    __tablename__ = "sso_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id"), index=True)
    connection_id: Mapped[UUID] = mapped_column(
        ForeignKey("idp_connections.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


# Tables described in the package's other modules, one per capability.
from app.models.bookkeeping import RequestErrors as RequestErrors  # noqa: E402
from app.models.console import ConsoleGrant as ConsoleGrant  # noqa: E402
from app.models.console import ConsoleLink as ConsoleLink  # noqa: E402
from app.models.console import ConsoleSession as ConsoleSession  # noqa: E402
from app.models.imports import ImportJob as ImportJob  # noqa: E402
from app.models.imports import ImportRow as ImportRow  # noqa: E402
from app.models.imports import ImportStatus as ImportStatus  # noqa: E402
from app.models.imports import RowOutcome as RowOutcome  # noqa: E402
from app.models.webhooks import DeliveryState as DeliveryState  # noqa: E402
from app.models.webhooks import WebhookAttempt as WebhookAttempt  # noqa: E402
from app.models.webhooks import WebhookDelivery as WebhookDelivery  # noqa: E402
from app.models.webhooks import WebhookEndpoint as WebhookEndpoint  # noqa: E402
