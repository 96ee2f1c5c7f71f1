"""The Mapping rules page: rules, the default role, projects, custom roles, the guard's
thresholds and held changes.

Every change that can move roles or seats (a rule created, edited or deleted, the default
role, a custom role's rank) is previewed first: the form posts to a preview, a dry run through
the service (nothing written) shows who would change, the seat totals after and whether the
mass-grant guard would hold it; its Confirm form carries the same values to the confirm
route, which makes the change through the service. Reads go through app/console/queries_rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.admin import changes
from app.console import bp, proposals, queries_rules
from app.console.auth import admin, console_actor, console_user, reader
from app.console.previews import Render, confirm, preview, refused
from app.db import read_only_unit, unit_of_work
from app.errors import NotFoundError, ProvisioningError
from app.provisioning import ProvisioningService

Operation = Callable[[ProvisioningService], object]


@bp.get("/rules")
@reader
def rules() -> ResponseReturnValue:
    """Rules, default role, projects, custom roles, guard thresholds and held changes."""
    return render_rules()


def render_rules(
    error: str | None = None,
    status: int = HTTPStatus.OK,
    rule_form: Mapping[str, str] | None = None,
) -> ResponseReturnValue:
    user = console_user()
    with read_only_unit() as session:
        page = queries_rules.rules_page(session, user.org_id)
    body = render_template(
        "console/rules.html",
        page=page,
        error=error,
        rule_form=rule_form or {},
        matches=proposals.MATCHES,
    )
    return body, status


def rules_error(detail: str, status: int) -> ResponseReturnValue:
    """The rules page again, with what was refused (and the new-rule form as it was sent)."""
    return render_rules(detail, status, request.form if "group" in request.form else None)


def write(operation: Operation, done: str, render: Render = rules_error) -> ResponseReturnValue:
    """A change that moves no one's roles or seats, made at once through the service."""
    user = console_user()
    try:
        with unit_of_work() as session:
            operation(ProvisioningService(session, user.org_id, console_actor()))
    except ProvisioningError as error:
        return refused(error, render)
    flash(done, "info")
    return redirect(url_for("console.rules"), HTTPStatus.SEE_OTHER)


# ---------------------------------------------------------------- mapping rules


@bp.post("/rules/new")
@admin
def preview_new_rule() -> ResponseReturnValue:
    """What a new rule would do, before it is made."""
    return preview(
        lambda: proposals.new_rule(request.form),
        url_for("console.confirm_new_rule"),
        url_for("console.rules"),
        rules_error,
    )


@bp.post("/rules/new/confirm")
@admin
def confirm_new_rule() -> ResponseReturnValue:
    return confirm(lambda: proposals.new_rule(request.form), "Mapping rule created.", rules_error)


@bp.get("/rules/<rule_id>/edit")
@admin
def edit_rule(rule_id: str) -> ResponseReturnValue:
    """A rule's edit form."""
    return render_edit(rule_id)


def render_edit(
    rule_id: str, error: str | None = None, status: int = HTTPStatus.OK
) -> ResponseReturnValue:
    user = console_user()
    try:
        with read_only_unit() as session:
            rule = queries_rules.rule(session, user.org_id, rule_id)
            page = queries_rules.rules_page(session, user.org_id)
    except NotFoundError:
        abort(HTTPStatus.NOT_FOUND)
    form = request.form if error is not None else {}
    body = render_template(
        "console/rules_edit.html",
        rule=rule,
        page=page,
        error=error,
        form=form,
        matches=proposals.MATCHES,
    )
    return body, status


@bp.post("/rules/<rule_id>/edit")
@admin
def preview_rule_edit(rule_id: str) -> ResponseReturnValue:
    """What the edited rule would do, before it is changed."""
    return preview(
        lambda: proposals.rule_edit(rule_id, request.form, _rule_now(rule_id)),
        url_for("console.confirm_rule_edit", rule_id=rule_id),
        url_for("console.edit_rule", rule_id=rule_id),
        lambda detail, status: render_edit(rule_id, detail, status),
    )


@bp.post("/rules/<rule_id>/edit/confirm")
@admin
def confirm_rule_edit(rule_id: str) -> ResponseReturnValue:
    return confirm(
        lambda: proposals.rule_edit(rule_id, request.form),
        "Mapping rule changed.",
        lambda detail, status: render_edit(rule_id, detail, status),
    )


@bp.post("/rules/<rule_id>/delete")
@admin
def preview_rule_removal(rule_id: str) -> ResponseReturnValue:
    """Who would lose what if the rule went."""
    return preview(
        lambda: proposals.rule_removal(rule_id, _rule_now(rule_id)),
        url_for("console.confirm_rule_removal", rule_id=rule_id),
        url_for("console.rules"),
        rules_error,
    )


def _rule_now(rule_id: str) -> str:
    """The rule in words as it stands, for the preview of its edit or removal (NotFoundError
    for another organization's rule)."""
    with read_only_unit() as session:
        return "Now: " + queries_rules.rule(session, console_user().org_id, rule_id).sentence


@bp.post("/rules/<rule_id>/delete/confirm")
@admin
def confirm_rule_removal(rule_id: str) -> ResponseReturnValue:
    return confirm(lambda: proposals.rule_removal(rule_id), "Mapping rule deleted.", rules_error)


@bp.post("/rules/default-role")
@admin
def preview_default_role() -> ResponseReturnValue:
    """What a new default role would do to users no rule reaches."""
    return preview(
        lambda: proposals.default_role(request.form),
        url_for("console.confirm_default_role"),
        url_for("console.rules"),
        rules_error,
    )


@bp.post("/rules/default-role/confirm")
@admin
def confirm_default_role() -> ResponseReturnValue:
    return confirm(lambda: proposals.default_role(request.form), "Default role set.", rules_error)


# ------------------------------------------------------- projects and custom roles


@bp.post("/rules/projects")
@admin
def create_project() -> ResponseReturnValue:
    key, name = _field("key"), _field("name")
    return write(lambda s: s.create_project(key, name), f"Project {key} created.")


@bp.post("/rules/projects/<project_id>/rename")
@admin
def rename_project(project_id: str) -> ResponseReturnValue:
    def rename(service: ProvisioningService) -> None:
        project = queries_rules.project(service.session, service.org_id, project_id)
        service.rename_project(project.key, _field("name"))

    return write(rename, "Project renamed.")


@bp.post("/rules/projects/<project_id>/delete")
@admin
def delete_project(project_id: str) -> ResponseReturnValue:
    def delete(service: ProvisioningService) -> None:
        project = queries_rules.project(service.session, service.org_id, project_id)
        service.delete_project(project.key)

    return write(delete, "Project deleted.")


@bp.post("/rules/custom-roles")
@admin
def create_custom_role() -> ResponseReturnValue:
    def create(service: ProvisioningService) -> None:
        rank = proposals.whole_number(request.form, "rank", "rank")
        service.create_custom_role(_field("slug"), _field("name"), rank, _field("description"))

    return write(create, f"Custom role {_field('name')} created.")


@bp.post("/rules/custom-roles/<role_id>/edit")
@admin
def preview_custom_role_edit(role_id: str) -> ResponseReturnValue:
    """What a custom role's new rank would do, before it is changed."""
    return preview(
        lambda: proposals.custom_role_edit(_custom_role_key(role_id), request.form),
        url_for("console.confirm_custom_role_edit", role_id=role_id),
        url_for("console.rules"),
        rules_error,
    )


@bp.post("/rules/custom-roles/<role_id>/edit/confirm")
@admin
def confirm_custom_role_edit(role_id: str) -> ResponseReturnValue:
    return confirm(
        lambda: proposals.custom_role_edit(_custom_role_key(role_id), request.form),
        "Custom role changed.",
        rules_error,
    )


@bp.post("/rules/custom-roles/<role_id>/delete")
@admin
def delete_custom_role(role_id: str) -> ResponseReturnValue:
    def delete(service: ProvisioningService) -> None:
        role = queries_rules.custom_role(service.session, service.org_id, role_id)
        service.delete_custom_role(role.key)

    return write(delete, "Custom role deleted.")


def _custom_role_key(role_id: str) -> str:
    """The key of one of the organization's custom roles (NotFoundError for another's)."""
    with read_only_unit() as session:
        return queries_rules.custom_role(session, console_user().org_id, role_id).key


def _field(name: str) -> str:
    return (request.form.get(name) or "").strip()


# ------------------------------------------------------ the guard, held changes


@bp.post("/rules/guard")
@admin
def set_guard() -> ResponseReturnValue:
    """The mass-grant guard's thresholds: they move no one, so no preview."""
    return write(
        lambda s: changes.set_guard_thresholds(s, proposals.guard_input(request.form)),
        "Guard thresholds saved.",
    )


@bp.get("/rules/held/<held_id>")
@reader
def held_change(held_id: str) -> ResponseReturnValue:
    """One held change: what it stages or holds, why, and the users it reaches."""
    user = console_user()
    try:
        with read_only_unit() as session:
            held = queries_rules.held_change(session, user.org_id, held_id)
    except NotFoundError:
        abort(HTTPStatus.NOT_FOUND)
    return render_template("console/rules_held.html", held=held)


@bp.post("/rules/held/<held_id>/confirm")
@admin
def confirm_held(held_id: str) -> ResponseReturnValue:
    """Apply a held change as it was proposed (a staged rule or default role), or its held
    grants as the users' groups stand now."""
    return write(lambda s: s.confirm_held(held_id), "Held change confirmed: it is now in force.")


@bp.post("/rules/held/<held_id>/discard")
@admin
def discard_held(held_id: str) -> ResponseReturnValue:
    """Drop a held change: what was in force before stays."""
    return write(lambda s: s.discard_held(held_id), "Held change discarded.")
