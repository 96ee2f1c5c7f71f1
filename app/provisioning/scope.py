"""What every capability of the provisioning core shares for one request: the session, the
organization, the actor, caches, organization-scoped lookups, version checks and locks.

Lock order. Every path takes its locks in this order, and any other order deadlocks against
a path that follows it:

1. group rows, in id order (FOR NO KEY UPDATE: `lock_groups`); a member change, a delete of
   a member, a /Bulk and an SSO login's group sync all lock groups first;
   a group's create or rename then writes the mapping rules it binds (`binding`), and a
   rule change writes its rule row before anything below, never a group row after it;
2. the organization row, which holds the seat counter (`lock_organization`), taken before
   seats or pending marks are read;
3. memberships and users' rows;
4. the audit chain's head, last, when the transaction commits (`app.audit`).

The tests that prove it: test_parallel_deletes_and_member_changes_in_shared_groups_never_deadlock,
test_bulk_locks_the_groups_it_changes_in_id_order and
test_an_sso_login_locks_its_groups_before_it_writes_the_user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple
from uuid import UUID

from sqlalchemy import ColumnElement, Result, Select, select
from sqlalchemy.orm import Session

import licensing
from app.audit import Actor
from app.errors import NotFoundError, PreconditionFailedError
from app.models import (
    CustomRole,
    Group,
    HeldChange,
    IdpConnection,
    MappingRule,
    Organization,
    User,
    WebhookEndpoint,
)

if TYPE_CHECKING:
    from app.provisioning.access.recorder import AccessRecorder

# Rows per statement when ids travel in an IN list.
BATCH = 1000
Scoped = TypeVar("Scoped", User, Group, IdpConnection, MappingRule, HeldChange, WebhookEndpoint)
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


def parse_uuid(value: str) -> UUID | None:
    """The UUID a string spells, or None."""
    try:
        return UUID(str(value))
    except ValueError:
        return None


def lower_key(value: str | None) -> str | None:
    """The case-insensitive key of a value (None stays None)."""
    return value.lower() if value is not None else None


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def licensing_rule(row: MappingRule) -> licensing.MappingRule:
    """A mapping rule's row as the licensing rules see it."""
    return licensing.MappingRule(
        rule_id=str(row.id),
        match=licensing.GroupMatch(row.match),
        group_value=row.group_value,
        role_key=row.role_key,
        project=row.project_key,
        priority=row.priority,
        bound_group_id=str(row.bound_group_id) if row.bound_group_id is not None else None,
        bound_external_id=row.bound_external_id,
    )


class Scope:
    """One organization's directory, on behalf of one actor, in one transaction.

    A dry run has a scope of its own, with an `AccessRecorder` that sees each affected
    user's access before and after; a real change has none.
    """

    def __init__(
        self,
        session: Session,
        organization: Organization | UUID,
        actor: Actor,
        recorder: AccessRecorder | None = None,
    ) -> None:
        self.session = session
        if isinstance(organization, Organization):
            self._organization: Organization | None = organization
            self.org_id = organization.id
        else:
            self._organization = None
            self.org_id = organization
        self.actor = actor
        self.recorder = recorder
        self._org_locked = False
        # Users this scope gave a new paid seat: the guard counts per request, and a SCIM
        # /Bulk is one request (one scope), however many operations it holds.
        self.paid_seats_granted: set[str] = set()
        self._rules: list[licensing.MappingRule] | None = None
        self._catalogue: licensing.RoleCatalogue | None = None
        self._resolver: licensing.RoleResolver | None = None
        self._contract: tuple[tuple[Any, ...], licensing.Contract] | None = None

    @property
    def organization(self) -> Organization:
        """The organization's row, read when first needed: a SCIM lookup never needs it."""
        if self._organization is None:
            found = self.session.get(Organization, self.org_id)
            if found is None:
                raise NotFoundError(f"organization {self.org_id} not found")
            self._organization = found
        return self._organization

    @property
    def cause(self) -> str:
        """The actor as held changes and the seat ledger name it."""
        return f"{self.actor.kind}:{self.actor.label}"

    # ---------------------------------------------------------------- caches

    def invalidate(self) -> None:
        """Forget the cached rules, roles and contract: the next use reads them again."""
        self._rules = None
        self._catalogue = None
        self._resolver = None
        self._contract = None

    def rules(self) -> list[licensing.MappingRule]:
        """The organization's mapping rules."""
        if self._rules is None:
            rows = self.session.scalars(
                select(MappingRule).where(MappingRule.org_id == self.org_id)
            ).all()
            self._rules = [licensing_rule(r) for r in rows]
        return self._rules

    def custom_roles(self) -> list[licensing.CustomRole]:
        """The organization's custom roles, read now."""
        rows = self.session.scalars(select(CustomRole).where(CustomRole.org_id == self.org_id))
        return [
            licensing.CustomRole(
                slug=r.key.removeprefix(licensing.CUSTOM_KEY_PREFIX),
                name=r.name,
                description=r.description,
                permissions=tuple(r.permissions),
                rank=r.rank,
            )
            for r in rows
        ]

    def catalogue(self) -> licensing.RoleCatalogue:
        """The organization's roles: the built-ins plus its custom roles."""
        if self._catalogue is None:
            self._catalogue = licensing.RoleCatalogue(self.custom_roles())
        return self._catalogue

    def resolver(self) -> licensing.RoleResolver:
        """Roles from groups under the current rules, catalogue and default role."""
        rules, catalogue = self.rules(), self.catalogue()
        default_role = self.organization.default_role_key
        if self._resolver is None or not self._resolver.is_for(rules, catalogue, default_role):
            self._resolver = licensing.RoleResolver(rules, catalogue, default_role)
        return self._resolver

    def contract(self) -> licensing.Contract:
        """The organization's contract as the licensing rules see it."""
        org = self.organization
        key = (
            org.paid_seat_tier,
            org.contract_starts_on,
            org.contract_ends_on,
            org.billing_terms,
            org.overage_policy,
        )
        if self._contract is not None and self._contract[0] == key:
            return self._contract[1]
        contract = licensing.Contract(
            paid_seat_tier=org.paid_seat_tier,
            starts_on=org.contract_starts_on,
            ends_on=org.contract_ends_on,
            billing_terms=licensing.BillingTerms(org.billing_terms),
            policy=licensing.OveragePolicy(org.overage_policy),
        )
        self._contract = (key, contract)
        return contract

    # --------------------------------------------------------------- lookups

    def scoped(
        self,
        model: type[Scoped],
        row_id: str | UUID,
        label: str,
        keep: Callable[[Scoped], bool] | None = None,
        lock: bool = False,
    ) -> Scoped:
        """A row of this organization by id, or NotFoundError: another organization's rows
        are indistinguishable from missing ones. A row this transaction already loaded is
        not read again (a SCIM request checks the user, then changes it), unless `lock` asks
        for it locked (FOR NO KEY UPDATE) and read afresh."""
        parsed = row_id if isinstance(row_id, UUID) else parse_uuid(row_id)
        row = None
        if parsed is not None:
            row = self.session.get(
                model,
                parsed,
                with_for_update={"key_share": True} if lock else None,
                populate_existing=lock,
            )
        if row is None or row.org_id != self.org_id or (keep is not None and not keep(row)):
            raise NotFoundError(f"{label} {row_id} not found")
        return row

    def rows(self, statement: Select[*_Ts]) -> Result[*_Ts]:
        """Rows of a query of plain columns, without the ORM's per-row processing (50,000
        rows in a rule change); the session is flushed first, as its own queries do."""
        self.session.flush()
        return self.session.connection().execute(statement)

    @staticmethod
    def check_version(current: int, expected: int | None) -> None:
        """PreconditionFailedError unless `expected` is None or the current version."""
        if expected is not None and expected != current:
            raise PreconditionFailedError(
                f"resource is at version {current}, not the expected {expected}"
            )

    # ----------------------------------------------------------------- locks

    def lock_groups(self, condition: ColumnElement[bool]) -> None:
        """Lock the organization's groups that match, in id order (FOR NO KEY UPDATE)."""
        self.session.execute(
            select(Group.id)
            .where(Group.org_id == self.org_id, condition)
            .order_by(Group.id)
            .with_for_update(key_share=True)
        )

    def lock_group_ids(self, group_ids: Iterable[str | UUID]) -> None:
        """Lock these groups of the organization in id order; ids that name none are left
        to the changes themselves to refuse."""
        parsed = (i if isinstance(i, UUID) else parse_uuid(i) for i in group_ids)
        ids = sorted({i for i in parsed if i is not None})
        if ids:
            self.lock_groups(Group.id.in_(ids))

    def lock_organization(self) -> None:
        """Lock the seat counter (the organization's row), once per transaction."""
        # Two concurrent IdP requests could otherwise both take the last paid seat. FOR NO
        # KEY UPDATE, because every audit, seat and role row inserted before this point holds
        # a KEY SHARE lock on the same row through its foreign key, and FOR UPDATE would
        # deadlock against those. SQLite's BEGIN IMMEDIATE already serializes writers.
        # A dry run (a recorder's scope) only reads the counter and is rolled back: it takes
        # no lock that the organization's writers would wait for.
        if not self._org_locked and self.recorder is None:
            self.session.refresh(self.organization, with_for_update={"key_share": True})
            self._org_locked = True

    def seats_in_play(self) -> bool:
        """Whether anyone in the organization can hold a seat: it has rules, a default role
        or a paid seat in use. Where no one can, there is no seat to race for."""
        org = self.organization
        return bool(self.rules()) or org.default_role_key is not None or org.paid_seat_count > 0

    def lock_seats_if_in_play(self) -> None:
        """Lock the seat counter unless no one can hold a seat: then deletes and
        deactivations need not wait for each other. A first rule created during such a
        delete is caught by the seat writes, which give seats to live users only."""
        if self.seats_in_play():
            self.lock_organization()
