"""The Contract page: tier, period and policy in force, their history, the pending queue in
arrival order; a contract change previewed by a dry run that writes nothing, then confirmed."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, ContractVersion, Organization, User
from app.provisioning import OPERATOR, ContractSpec, ProvisioningService, RuleSpec
from tests.console.support import csrf_token, make_person, post_form

CONTRACT = "/console/contract"
RAISE_TIER = {
    "paid_seats": "2",
    "policy": "hold",
    "billing_terms": "annual",
    "starts_on": "2026-01-01",
    "ends_on": "2026-12-31",
}


def audit_count(session: Session, organization: Organization) -> int:
    session.expire_all()
    query = select(func.count()).where(AuditEvent.org_id == organization.id)
    return session.scalar(query) or 0


def versions(session: Session, organization: Organization) -> int:
    query = select(func.count()).where(ContractVersion.org_id == organization.id)
    return session.scalar(query) or 0


def held_back(session: Session, organization: Organization) -> list[str]:
    """A tier of one paid seat under `hold`: engineers joining after the first wait."""
    service = ProvisioningService(session, organization, OPERATOR)
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="hold"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member", "*"))
    session.commit()
    names = [f"{name}@{organization.slug}.example" for name in ("ann", "bob", "cy", "dee")]
    for name in names:
        make_person(session, organization, name, "Engineering")
    return names


@pytest.fixture
def queue(session: Session, acme: Organization) -> list[str]:
    return held_back(session, acme)


def test_the_page_shows_the_contract_its_history_and_the_queue_in_order(
    admin: FlaskClient, session: Session, acme: Organization, queue: list[str]
) -> None:
    response = admin.get(CONTRACT)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    facts = text[text.index('id="contract-facts"') :]
    assert re.search(r"<dt>Paid-seat tier</dt><dd>1</dd>", facts)
    assert "<dt>Overage policy</dt><dd>hold" in facts
    assert re.search(r"<dt>Paid</dt><dd>1 of 1", text)
    waiting = text[text.index('id="pending-queue"') :]
    places = [waiting.index(name) for name in queue[1:]]
    assert places == sorted(places), "the queue is shown in arrival order"
    assert queue[0] not in waiting.split("</table>")[0]
    history = text[text.index('id="contract-history"') :]
    assert history.count("<tr><td><time") == versions(session, acme) == 2
    assert 'id="contract-form"' in text and 'name="paid_seats"' in text


def test_preview_shows_who_would_be_promoted_and_writes_nothing(
    admin: FlaskClient, session: Session, acme: Organization, queue: list[str]
) -> None:
    before = audit_count(session, acme), versions(session, acme)
    response = post_form(admin, CONTRACT, RAISE_TIER, page=CONTRACT)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Preview: Contract change" in text
    assert "1 user would change" in text and queue[1] in text and queue[2] not in text
    # Pending with no free role to fall back on: no seat while waiting.
    assert "none (pending) → paid" in text and "*: — → Team Member" in text
    assert re.search(r"<th scope=\"row\">Paid</th><td>1</td><td>2</td>", text)
    assert 'action="/console/contract/confirm"' in text
    assert '<input type="hidden" name="paid_seats" value="2">' in text
    assert "Paid-seat tier after the change: 2." in text and "would exceed" not in text
    assert (audit_count(session, acme), versions(session, acme)) == before
    session.expire_all()
    assert session.get(Organization, acme.id).paid_seat_tier == 1  # type: ignore[union-attr]


def test_confirm_sets_the_contract_as_the_console_user_and_promotes_the_next_in_line(
    admin: FlaskClient, session: Session, acme: Organization, queue: list[str]
) -> None:
    response = post_form(admin, f"{CONTRACT}/confirm", RAISE_TIER, page=CONTRACT)
    assert response.status_code == 303 and response.headers["Location"].endswith(CONTRACT)
    session.expire_all()
    org = session.get(Organization, acme.id)
    assert org is not None and org.paid_seat_tier == 2 and str(org.contract_ends_on) == "2026-12-31"
    assert versions(session, acme) == 3
    row = session.execute(
        select(AuditEvent.actor_type, AuditEvent.actor)
        .where(AuditEvent.org_id == acme.id, AuditEvent.action == "org.contract_changed")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).one()
    assert tuple(row) == ("console", "it@acme.example")
    promoted = session.scalar(select(User).where(User.user_name == queue[1]))
    assert promoted is not None and promoted.seat == "paid" and promoted.pending_since is None
    page = admin.get(CONTRACT).get_data(as_text=True)
    assert "Contract changed." in page and "2026-12-31" in page


def test_preview_of_a_tier_below_the_paid_seats_warns_that_it_is_exceeded(
    admin: FlaskClient, session: Session, acme: Organization, queue: list[str]
) -> None:
    lower = {**RAISE_TIER, "paid_seats": "0", "policy": "allow"}
    text = post_form(admin, CONTRACT, lower, page=CONTRACT).get_data(as_text=True)
    # `allow` grants the waiting users at once; billing never takes a paid seat away.
    assert "3 users would change" in text
    assert re.search(r"<th scope=\"row\">Paid</th><td>1</td><td>4</td>", text)
    assert "Paid seats after would exceed the tier." in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("paid_seats", "many", "paid seats must be a whole number"),
        ("paid_seats", "-1", "paid seats must not be negative"),
        ("policy", "maybe", "policy must be one of"),
        ("billing_terms", "weekly", "billing terms must be one of"),
        ("ends_on", "31/12/2026", "end date must be a date"),
        ("ends_on", "2025-01-01", "contract ends on 2025-01-01 before it starts on 2026-01-01"),
    ],
)
def test_invalid_input_re_renders_the_form_with_the_error(
    admin: FlaskClient, session: Session, acme: Organization, field: str, value: str, message: str
) -> None:
    before = audit_count(session, acme)
    for url in (CONTRACT, f"{CONTRACT}/confirm"):
        response = post_form(admin, url, {**RAISE_TIER, field: value}, page=CONTRACT)
        assert response.status_code == 400, (url, response.get_data(as_text=True)[:300])
        text = response.get_data(as_text=True)
        assert 'role="alert"' in text and message in text
        if field not in ("policy", "billing_terms"):  # a choice not offered is not re-selected
            assert f'value="{value}"' in text, "the form is shown again as it was sent"
    assert audit_count(session, acme) == before


def test_a_reviewer_reads_the_contract_but_cannot_change_it(
    reviewer: FlaskClient, session: Session, acme: Organization, queue: list[str]
) -> None:
    page = reviewer.get(CONTRACT)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert queue[1] in text and 'id="contract-form"' not in text
    token = csrf_token(reviewer, CONTRACT)
    before = audit_count(session, acme)
    for url in (CONTRACT, f"{CONTRACT}/confirm"):
        assert reviewer.post(url, data={**RAISE_TIER, "csrf_token": token}).status_code == 403
    assert audit_count(session, acme) == before


def test_changes_without_a_csrf_token_are_400(
    admin: FlaskClient, session: Session, acme: Organization
) -> None:
    before = audit_count(session, acme)
    for url in (CONTRACT, f"{CONTRACT}/confirm"):
        response = admin.post(url, data=RAISE_TIER)
        assert response.status_code == 400 and "Form refused" in response.get_data(as_text=True)
    assert audit_count(session, acme) == before


def test_another_organizations_contract_and_queue_stay_out_of_sight(
    admin: FlaskClient, session: Session, acme: Organization, other_org: Organization
) -> None:
    globex_queue = held_back(session, other_org)
    text = admin.get(CONTRACT).get_data(as_text=True)
    assert "Nobody is waiting for a paid seat." in text
    assert not any(name in text for name in globex_queue)
    assert post_form(admin, f"{CONTRACT}/confirm", RAISE_TIER, page=CONTRACT).status_code == 303
    session.expire_all()
    globex = session.get(Organization, other_org.id)
    assert globex is not None and globex.paid_seat_tier == 1
