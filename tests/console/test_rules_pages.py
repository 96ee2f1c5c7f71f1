"""The Mapping rules page: every rule change previewed by a dry run that writes nothing, then
applied on Confirm through the service (audited with the console user); projects, custom
roles, the default role, guard thresholds, and held changes confirmed or discarded."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    AuditEvent,
    CustomRole,
    HeldChange,
    MappingRule,
    Organization,
    OutboxEvent,
    Project,
    User,
)
from app.provisioning import OPERATOR, ProvisioningService, RuleSpec
from tests.console.support import csrf_token, make_person, post_form

RULES = "/console/rules"
NEW_RULE = {
    "group": "Engineering",
    "match": "displayName",
    "role": "team_member",
    "project": "*",
    "priority": "0",
}


def post(client: FlaskClient, url: str, data: dict[str, str] | None = None) -> str:
    """POST a form from the rules page; the page it answers with."""
    response = post_form(client, url, data, page=RULES)
    return response.get_data(as_text=True)


def audit_rows(session: Session, organization: Organization) -> list[tuple[str, str, str]]:
    session.expire_all()
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.actor)
        .where(AuditEvent.org_id == organization.id)
        .order_by(AuditEvent.id)
    )
    return [(action, kind, actor) for action, kind, actor in rows]


def count(session: Session, model: type[object], organization: Organization) -> int:
    session.expire_all()
    column = model.org_id  # type: ignore[attr-defined]
    return session.scalar(select(func.count()).where(column == organization.id)) or 0


@pytest.fixture
def engineers(session: Session, acme: Organization) -> list[User]:
    return [
        make_person(session, acme, f"{name}@acme.example", "Engineering")
        for name in ("ann", "bob", "cy")
    ]


def service(session: Session, organization: Organization) -> ProvisioningService:
    return ProvisioningService(session, organization, OPERATOR)


def test_the_page_lists_rules_projects_roles_and_the_guard(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    service(session, acme).create_project("web", "Website")
    service(session, acme).create_rule(RuleSpec("displayName", "Engineering", "team_member", "web"))
    session.commit()
    page = admin.get(RULES)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Engineering" in text and "Team Member" in text and "Website" in text
    assert "New mapping rule" in text and 'name="max_new_paid_seats"' in text


def test_preview_of_a_new_rule_shows_the_affected_users_and_writes_nothing(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    audit_before = audit_rows(session, acme)
    outbox_before = count(session, OutboxEvent, acme)
    text = post(admin, f"{RULES}/new", NEW_RULE)
    assert "Preview: New mapping rule" in text
    assert "3 users would change" in text
    for name in ("ann@acme.example", "bob@acme.example", "cy@acme.example"):
        assert name in text
    assert "*: — → Team Member" in text
    assert re.search(r"<th scope=\"row\">Paid</th><td>0</td><td>3</td>", text)
    # The Confirm form carries the same values.
    assert 'action="/console/rules/new/confirm"' in text
    assert '<input type="hidden" name="group" value="Engineering">' in text
    assert audit_rows(session, acme) == audit_before
    assert count(session, OutboxEvent, acme) == outbox_before
    assert count(session, MappingRule, acme) == 0
    users = session.scalars(select(User).where(User.org_id == acme.id))
    assert all(u.seat == "none" for u in users)


def test_confirm_creates_the_rule_as_the_console_user(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    response = post_form(admin, f"{RULES}/new/confirm", NEW_RULE, page=RULES)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/console/rules")
    assert "Mapping rule created." in admin.get(RULES).get_data(as_text=True)
    rule = session.scalars(select(MappingRule).where(MappingRule.org_id == acme.id)).one()
    assert (rule.group_value, rule.role_key) == ("Engineering", "team_member")
    assert rule.project_key == "*"
    assert ("rule.created", "console", "it@acme.example") in audit_rows(session, acme)
    session.expire_all()
    assert {u.seat for u in engineers} == {"paid"}


def test_confirming_the_same_rule_twice_makes_one_rule(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    assert post_form(admin, f"{RULES}/new/confirm", NEW_RULE, page=RULES).status_code == 303
    again = post_form(admin, f"{RULES}/new/confirm", NEW_RULE, page=RULES)
    assert again.status_code == 409
    assert "already gives this group this role" in again.get_data(as_text=True)
    assert count(session, MappingRule, acme) == 1


def test_invalid_rule_re_renders_the_form_with_the_error(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    for data, message in (
        ({**NEW_RULE, "role": "overlord"}, "unknown role"),
        ({**NEW_RULE, "project": "nowhere"}, "unknown project"),
        ({**NEW_RULE, "priority": "high"}, "priority must be a whole number"),
        ({**NEW_RULE, "group": "  "}, "the rule needs a group"),
        ({**NEW_RULE, "match": "email"}, "match must be one of"),
    ):
        for url in (f"{RULES}/new", f"{RULES}/new/confirm"):
            response = post_form(admin, url, data, page=RULES)
            assert response.status_code == 400, (url, data)
            text = response.get_data(as_text=True)
            assert message in text and 'role="alert"' in text
            assert "New mapping rule" in text
    assert count(session, MappingRule, acme) == 0


def test_edit_previews_then_changes_the_rule(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    rule = service(session, acme).create_rule(
        RuleSpec("displayName", "Engineering", "team_member", "*")
    )
    session.commit()
    edit = f"{RULES}/{rule.id}/edit"
    form = admin.get(edit)
    assert form.status_code == 200 and 'value="Engineering"' in form.get_data(as_text=True)
    changed = {**NEW_RULE, "role": "client"}
    audit_before = audit_rows(session, acme)
    text = post(admin, edit, changed)
    assert "3 users would change" in text and "*: Team Member → Client" in text
    assert audit_rows(session, acme) == audit_before
    response = post_form(admin, f"{edit}/confirm", changed, page=RULES)
    assert response.status_code == 303
    session.expire_all()
    assert session.get(MappingRule, rule.id).role_key == "client"  # type: ignore[union-attr]
    assert ("rule.updated", "console", "it@acme.example") in audit_rows(session, acme)
    bad = post_form(admin, edit, {**changed, "role": "nope"}, page=RULES)
    assert bad.status_code == 400 and "unknown role" in bad.get_data(as_text=True)
    assert "Edit mapping rule" in bad.get_data(as_text=True)


def test_delete_previews_who_loses_what_then_deletes(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    rule = service(session, acme).create_rule(
        RuleSpec("displayName", "Engineering", "team_member", "*")
    )
    session.commit()
    text = post(admin, f"{RULES}/{rule.id}/delete")
    assert "Preview: Delete mapping rule" in text and "*: Team Member → —" in text
    assert "Now: members of &#39;Engineering&#39; (displayName) get Team Member in *" in text
    assert count(session, MappingRule, acme) == 1
    response = post_form(admin, f"{RULES}/{rule.id}/delete/confirm", {}, page=RULES)
    assert response.status_code == 303
    assert count(session, MappingRule, acme) == 0
    assert ("rule.deleted", "console", "it@acme.example") in audit_rows(session, acme)


def test_default_role_is_previewed_then_set(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    text = post(admin, f"{RULES}/default-role", {"role": "view_only"})
    assert "Preview: Default role" in text and "3 users would change" in text
    assert "*: — → View Only" in text
    response = post_form(admin, f"{RULES}/default-role/confirm", {"role": "view_only"}, page=RULES)
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Organization, acme.id).default_role_key == "view_only"  # type: ignore[union-attr]
    assert ("org.default_role_changed", "console", "it@acme.example") in audit_rows(session, acme)


def guard_holds_everything(session: Session, organization: Organization) -> None:
    service(session, organization).set_guard_thresholds(1, 1.0, 10)
    session.commit()


def test_a_change_the_guard_would_hold_says_so_and_confirm_stages_it(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    guard_holds_everything(session, acme)
    audit_before = audit_rows(session, acme)
    text = post(admin, f"{RULES}/new", NEW_RULE)
    assert "The mass-grant guard would hold this change" in text
    assert "Grants the guard would hold" in text and "ann@acme.example" in text
    assert "0 users would change" in text
    assert audit_rows(session, acme) == audit_before
    assert count(session, HeldChange, acme) == 0
    response = post_form(admin, f"{RULES}/new/confirm", NEW_RULE, page=RULES)
    assert response.status_code == 303
    held = session.scalars(select(HeldChange).where(HeldChange.org_id == acme.id)).one()
    assert held.status == "held" and held.kind == "rule_create"
    assert count(session, MappingRule, acme) == 0
    page = admin.get(RULES).get_data(as_text=True)
    assert "The mass-grant guard held this change" in page
    assert f'href="/console/rules/held/{held.id}"' in page
    assert "Held changes awaiting confirmation" in page
    detail = admin.get(f"{RULES}/held/{held.id}")
    assert detail.status_code == 200
    assert "New rule: members of &#39;Engineering&#39;" in detail.get_data(as_text=True)
    assert "bob@acme.example" in detail.get_data(as_text=True)


def test_held_change_confirmed_comes_into_force(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    guard_holds_everything(session, acme)
    held = service(session, acme).create_rule(
        RuleSpec("displayName", "Engineering", "team_member", "*")
    )
    session.commit()
    assert isinstance(held, HeldChange)
    response = post_form(admin, f"{RULES}/held/{held.id}/confirm", {}, page=RULES)
    assert response.status_code == 303
    session.expire_all()
    assert held.status == "confirmed" and held.decided_by == "console:it@acme.example"
    assert count(session, MappingRule, acme) == 1
    assert ("change.confirmed", "console", "it@acme.example") in audit_rows(session, acme)
    again = post_form(admin, f"{RULES}/held/{held.id}/confirm", {}, page=RULES)
    assert again.status_code == 409 and "already confirmed" in again.get_data(as_text=True)


def test_held_change_discarded_leaves_what_was_in_force(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    guard_holds_everything(session, acme)
    held = service(session, acme).set_default_role("team_member")
    session.commit()
    assert isinstance(held, HeldChange)
    response = post_form(admin, f"{RULES}/held/{held.id}/discard", {}, page=RULES)
    assert response.status_code == 303
    session.expire_all()
    assert held.status == "discarded"
    assert session.get(Organization, acme.id).default_role_key is None  # type: ignore[union-attr]
    assert ("change.discarded", "console", "it@acme.example") in audit_rows(session, acme)
    assert "Recently decided held changes" in admin.get(RULES).get_data(as_text=True)


def test_projects_are_created_renamed_and_deleted(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    created = post_form(admin, f"{RULES}/projects", {"key": "web", "name": "Website"})
    assert created.status_code == 303
    project = session.scalars(select(Project).where(Project.org_id == acme.id)).one()
    rename = post_form(admin, f"{RULES}/projects/{project.id}/rename", {"name": "Site"})
    assert rename.status_code == 303
    session.expire_all()
    assert project.name == "Site"
    duplicate = post_form(admin, f"{RULES}/projects", {"key": "web", "name": "Again"})
    assert duplicate.status_code == 409 and "already exists" in duplicate.get_data(as_text=True)
    bad = post_form(admin, f"{RULES}/projects", {"key": "no spaces", "name": "x"})
    assert bad.status_code == 400 and "must be 1-64 letters" in bad.get_data(as_text=True)
    assert post_form(admin, f"{RULES}/projects/{project.id}/delete").status_code == 303
    assert count(session, Project, acme) == 0
    actions = [a for a, kind, actor in audit_rows(session, acme) if kind == "console"]
    assert actions[-3:] == ["project.created", "project.updated", "project.deleted"]


def test_custom_roles_are_created_re_ranked_through_a_preview_and_deleted(
    admin: FlaskClient, session: Session, acme: Organization, engineers: list[User]
) -> None:
    created = post_form(
        admin, f"{RULES}/custom-roles", {"slug": "lead", "name": "Lead", "rank": "450"}
    )
    assert created.status_code == 303
    role = session.scalars(select(CustomRole).where(CustomRole.org_id == acme.id)).one()
    bad = post_form(admin, f"{RULES}/custom-roles", {"slug": "x", "name": "X", "rank": "400"})
    assert bad.status_code == 400 and "rank of the built-in role" in bad.get_data(as_text=True)
    service(session, acme).create_rule(RuleSpec("displayName", "Engineering", "custom:lead", "*"))
    service(session, acme).create_rule(RuleSpec("displayName", "Engineering", "team_member", "*"))
    session.commit()
    edit = {"name": "Lead", "rank": "350", "description": ""}
    text = post(admin, f"{RULES}/custom-roles/{role.id}/edit", edit)
    assert "3 users would change" in text and "*: Lead → Team Member" in text
    done = post_form(admin, f"{RULES}/custom-roles/{role.id}/edit/confirm", edit)
    assert done.status_code == 303
    session.expire_all()
    assert role.rank == 350
    in_use = post_form(admin, f"{RULES}/custom-roles/{role.id}/delete")
    assert in_use.status_code == 409 and "used by mapping rules" in in_use.get_data(as_text=True)


def test_guard_thresholds_are_saved_and_checked(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    form = {
        "max_new_paid_seats": "5",
        "max_new_paid_share": "0.5",
        "max_new_project_admins": "2",
        "window_minutes": "30",
        "max_new_paid_seats_in_window": "20",
    }
    assert post_form(admin, f"{RULES}/guard", form).status_code == 303
    session.expire_all()
    org = session.get(Organization, acme.id)
    assert org is not None and (org.guard_max_new_paid_seats, org.guard_window_minutes) == (5, 30)
    assert ("org.guard_changed", "console", "it@acme.example") in audit_rows(session, acme)
    bad = post_form(admin, f"{RULES}/guard", {**form, "max_new_paid_share": "lots"})
    assert bad.status_code == 400 and "must be a number" in bad.get_data(as_text=True)


def write_routes(rule_id: str, held_id: str, project_id: str, role_id: str) -> list[str]:
    return [
        f"{RULES}/new",
        f"{RULES}/new/confirm",
        f"{RULES}/{rule_id}/edit",
        f"{RULES}/{rule_id}/edit/confirm",
        f"{RULES}/{rule_id}/delete",
        f"{RULES}/{rule_id}/delete/confirm",
        f"{RULES}/default-role",
        f"{RULES}/default-role/confirm",
        f"{RULES}/projects",
        f"{RULES}/projects/{project_id}/rename",
        f"{RULES}/projects/{project_id}/delete",
        f"{RULES}/custom-roles",
        f"{RULES}/custom-roles/{role_id}/edit",
        f"{RULES}/custom-roles/{role_id}/edit/confirm",
        f"{RULES}/custom-roles/{role_id}/delete",
        f"{RULES}/guard",
        f"{RULES}/held/{held_id}/confirm",
        f"{RULES}/held/{held_id}/discard",
    ]


@pytest.fixture
def acme_ids(session: Session, acme: Organization, engineers: list[User]) -> list[str]:
    """Ids of acme's rule, held change, project and custom role."""
    acme_service = service(session, acme)
    project = acme_service.create_project("web", "Website")
    role = acme_service.create_custom_role("lead", "Lead", 450)
    rule = acme_service.create_rule(RuleSpec("displayName", "Engineering", "team_member", "*"))
    make_person(session, acme, "dan@acme.example", "Ops")
    make_person(session, acme, "eve@acme.example", "Ops")
    acme_service.set_guard_thresholds(1, 1.0, 10)
    held = acme_service.set_default_role("team_member")
    session.commit()
    assert isinstance(held, HeldChange)
    return [str(rule.id), str(held.id), str(project.id), str(role.id)]


def test_a_reviewer_reads_but_every_write_is_403(
    reviewer: FlaskClient, session: Session, acme: Organization, acme_ids: list[str]
) -> None:
    page = reviewer.get(RULES)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Engineering" in text and "New mapping rule" not in text and "Confirm" not in text
    assert reviewer.get(f"{RULES}/held/{acme_ids[1]}").status_code == 200
    assert reviewer.get(f"{RULES}/{acme_ids[0]}/edit").status_code == 403
    audit_before = audit_rows(session, acme)
    token = csrf_token(reviewer, RULES)
    for url in write_routes(*acme_ids):
        response = reviewer.post(url, data={**NEW_RULE, "csrf_token": token})
        assert response.status_code == 403, url
    assert audit_rows(session, acme) == audit_before


def test_every_write_without_a_csrf_token_is_400(
    admin: FlaskClient, session: Session, acme: Organization, acme_ids: list[str]
) -> None:
    audit_before = audit_rows(session, acme)
    for url in write_routes(*acme_ids):
        response = admin.post(url, data=NEW_RULE)
        assert response.status_code == 400, url
        assert "Form refused" in response.get_data(as_text=True)
    assert audit_rows(session, acme) == audit_before


def test_another_organizations_ids_are_404(
    admin: FlaskClient, session: Session, acme: Organization, other_org: Organization
) -> None:
    globex = service(session, other_org)
    project = globex.create_project("secret", "Secret")
    role = globex.create_custom_role("spy", "Spy", 450)
    rule = globex.create_rule(RuleSpec("displayName", "Globex Staff", "team_member", "*"))
    make_person(session, other_org, "mole@globex.example", "Globex Ops")
    make_person(session, other_org, "rat@globex.example", "Globex Ops")
    globex.set_guard_thresholds(1, 1.0, 10)
    held = globex.set_default_role("team_member")
    session.commit()
    assert isinstance(held, HeldChange)
    ids = [str(rule.id), str(held.id), str(project.id), str(role.id)]
    audit_before = audit_rows(session, other_org)
    assert admin.get(f"{RULES}/{ids[0]}/edit").status_code == 404
    assert admin.get(f"{RULES}/held/{ids[1]}").status_code == 404
    assert admin.get(f"{RULES}/not-a-uuid/edit").status_code == 404
    token = csrf_token(admin, RULES)
    form = {"name": "Mine", "rank": "460", "description": ""}
    for url in write_routes(*ids):
        if f"/{ids[0]}/" in url or any(f"/{i}" in url for i in ids[1:]):
            response = admin.post(url, data={**NEW_RULE, **form, "csrf_token": token})
            assert response.status_code == 404, url
    assert audit_rows(session, other_org) == audit_before
    assert "spy@globex.example" not in admin.get(RULES).get_data(as_text=True)
