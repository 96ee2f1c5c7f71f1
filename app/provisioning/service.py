"""`ProvisioningService`: the one door, a facade over the capability modules of this package.
Every entry point (SCIM, SSO, the admin API and console, the CLI) makes its changes through it,
in the caller's unit of work; it never commits."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from uuid import UUID

from sqlalchemy.orm import Session

import licensing
from app import audit, reporting
from app.audit import Actor
from app.models import Organization
from app.provisioning import (
    access,
    binding,
    catalogue,
    connections,
    console,
    contract,
    held,
    imports,
    rules,
    webhooks,
)
from app.provisioning import login as sso
from app.provisioning.directory import groups, users
from app.provisioning.scope import Scope

SYSTEM = Actor(kind="system", label="system")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class Operation(Generic[_P, _R]):
    """A capability's operation as a method of the service: called on the service's scope,
    with the operation's own signature and docstring."""

    def __init__(self, operation: Callable[Concatenate[Scope, _P], _R]) -> None:
        self.operation = operation
        self.__doc__ = operation.__doc__

    @overload
    def __get__(
        self, service: None, owner: type[Any]
    ) -> Callable[Concatenate[ProvisioningService, _P], _R]: ...

    @overload
    def __get__(self, service: ProvisioningService, owner: type[Any]) -> Callable[_P, _R]: ...

    def __get__(
        self, service: ProvisioningService | None, owner: type[Any]
    ) -> Callable[Concatenate[ProvisioningService, _P], _R] | Callable[_P, _R]:
        if service is None:
            return self.unbound
        return functools.partial(self.operation, service.scope)

    def unbound(self, service: ProvisioningService, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """The operation on the class, as an unbound method: the service comes first."""
        return self.operation(service.scope, *args, **kwargs)


class ProvisioningService:
    """Operations on one organization's directory, on behalf of one actor."""

    def __init__(
        self,
        session: Session,
        organization: Organization | UUID,
        actor: Actor,
        *,
        recorder: access.AccessRecorder | None = None,
    ) -> None:
        self.scope = Scope(session, organization, actor, recorder)

    @property
    def session(self) -> Session:
        return self.scope.session

    @property
    def org_id(self) -> UUID:
        return self.scope.org_id

    @property
    def actor(self) -> Actor:
        return self.scope.actor

    @property
    def organization(self) -> Organization:
        """The organization's row, read when first needed: a SCIM lookup never needs it."""
        return self.scope.organization

    # Users and groups, as the identity provider pushes them.
    get_user = Operation(users.get_user)
    count_users = Operation(users.count_users)
    create_user = Operation(users.create_user)
    replace_user = Operation(users.replace_user)
    delete_user = Operation(users.delete_user)
    get_group = Operation(groups.get_group)
    create_group = Operation(groups.create_group)
    replace_group = Operation(groups.replace_group)
    update_group = Operation(groups.update_group)
    delete_group = Operation(groups.delete_group)
    import_users = Operation(imports.import_users)
    match_users = Operation(imports.match_users)
    prepare_role_groups = Operation(imports.prepare_role_groups)
    check_project_roles = Operation(imports.check_project_roles)
    project_keys = Operation(imports.project_keys)

    # SSO login and just-in-time provisioning.
    login = Operation(sso.login)
    record_refused_login = Operation(sso.record_refused_login)
    record_test_sign_in = Operation(sso.record_test_sign_in)

    # How the organization signs in.
    create_connection = Operation(connections.create_connection)
    get_connection = Operation(connections.get_connection)
    update_connection = Operation(connections.update_connection)
    delete_connection = Operation(connections.delete_connection)
    set_sso_options = Operation(connections.set_sso_options)
    add_domain = Operation(connections.add_domain)
    remove_domain = Operation(connections.remove_domain)

    # What rules can grant, and the rules.
    create_project = Operation(catalogue.create_project)
    rename_project = Operation(catalogue.rename_project)
    delete_project = Operation(catalogue.delete_project)
    role_key = Operation(catalogue.role_key)
    create_custom_role = Operation(catalogue.create_custom_role)
    update_custom_role = Operation(catalogue.update_custom_role)
    delete_custom_role = Operation(catalogue.delete_custom_role)
    create_rule = Operation(rules.create_rule)
    update_rule = Operation(rules.update_rule)
    delete_rule = Operation(rules.delete_rule)
    rebind_rule = Operation(binding.rebind_rule)
    set_default_role = Operation(rules.set_default_role)

    # The contract, the guard and what it held.
    set_contract = Operation(contract.set_contract)
    set_guard_thresholds = Operation(contract.set_guard_thresholds)
    confirm_held = Operation(held.confirm_held)
    discard_held = Operation(held.discard_held)

    # Webhook endpoints, and deliveries replayed.
    add_webhook = Operation(webhooks.add_webhook)
    get_webhook = Operation(webhooks.get_webhook)
    list_webhooks = Operation(webhooks.list_webhooks)
    set_webhook_enabled = Operation(webhooks.set_webhook_enabled)
    rotate_webhook_secret = Operation(webhooks.rotate_webhook_secret)
    delete_webhook = Operation(webhooks.delete_webhook)
    list_deliveries = Operation(webhooks.list_deliveries)
    replay_event = Operation(webhooks.replay_event)
    replay_dead = Operation(webhooks.replay_dead)

    # Who may use the console.
    grant_console_role = Operation(console.grant_console_role)
    create_console_link = Operation(console.create_link)
    open_console_session = Operation(console.open_sso_session)
    end_console_session = Operation(console.end_session)

    # Access as the rules have it.
    drift = Operation(access.drift)

    def seat_totals(self) -> licensing.SeatTotals:
        """Paid, free and pending users right now."""
        return reporting.seat_totals(self.session, self.org_id)

    def catalogue(self) -> licensing.RoleCatalogue:
        """The organization's roles: the built-ins plus its custom roles."""
        return self.scope.catalogue()

    def resolver(self) -> licensing.RoleResolver:
        """Roles from groups under the current rules, catalogue and default role."""
        return self.scope.resolver()

    def lock_groups(self, group_ids: Iterable[str | UUID]) -> None:
        """Lock these groups in id order ahead of a batch of changes to them in one
        transaction (SCIM /Bulk): in the batch's order they would deadlock against another."""
        self.scope.lock_group_ids(group_ids)

    def dry_run(self, change: Callable[[ProvisioningService], object]) -> licensing.DryRunResult:
        """What `change` would do to roles and seats: it runs on a service of its own, whose
        recorder sees each affected user's access, in a savepoint rolled back after."""
        totals = self.seat_totals()
        recorder = access.AccessRecorder()
        trial = ProvisioningService(self.session, self.org_id, self.actor, recorder=recorder)
        with audit.trial(self.session):
            savepoint = self.session.begin_nested()
            try:
                change(trial)
            finally:
                savepoint.rollback()
                self.session.expire_all()
        return recorder.result(totals)
