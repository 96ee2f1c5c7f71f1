"""The console's Access review and Audit pages: each report renders with data, filters narrow
it, exports stream exactly the matching rows, another organization's data never shows, and a
security reviewer reads all of it."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.console import queries_review
from app.models import AuditEvent, Organization, User
from app.provisioning import OPERATOR, ProvisioningService, RuleSpec, UserSpec
from tests.console.support import make_person

PAGES = (
    "/console/access-review",
    "/console/access-review/changes",
    "/console/access-review/renewal",
    "/console/access-review/drift",
    "/console/audit",
    "/console/audit/verify",
)
REPORTS = ("access", "changes", "renewal", "drift")


@dataclass(frozen=True)
class Directory:
    alice: User
    bob: User
    carol: User
    dave: User
    between: str  # an instant after Alice and Bob were provisioned and before Carol was


@pytest.fixture
def directory(session: Session, acme: Organization, other_org: Organization) -> Directory:
    """Acme: Alice and Bob in Engineering (team members everywhere), Carol in no group, Dave
    deactivated, and a rule for a group that does not exist. Globex has a rule too."""
    service = ProvisioningService(session, acme, OPERATOR)
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.create_rule(RuleSpec("displayName", "Designers", "client"))
    ProvisioningService(session, other_org, OPERATOR).create_rule(
        RuleSpec("displayName", "Globex Staff", "project_admin")
    )
    alice = make_person(session, acme, "alice@acme.example", "Engineering")
    bob = make_person(session, acme, "bob@acme.example", "Engineering")
    between = instant_between(session)
    carol = make_person(session, acme, "carol@acme.example")
    dave = make_person(session, acme, "dave@acme.example")
    service.replace_user(dave.id, UserSpec(user_name=dave.user_name, is_active=False))
    session.commit()
    return Directory(alice, bob, carol, dave, between)


def instant_between(session: Session) -> str:
    """Commit, and name an instant strictly between what came before and what comes after."""
    session.commit()
    time.sleep(0.002)
    instant = datetime.now(UTC).isoformat()
    time.sleep(0.002)
    return instant


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def table_users(body: str) -> set[str]:
    """The acme and globex userNames a page's tables show."""
    return set(re.findall(r"<td>([a-z]+@(?:acme|globex)\.example)</td>", body))


def download(client: FlaskClient, url: str) -> TestResponse:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert response.headers["Content-Disposition"].startswith('attachment; filename="acme-')
    return response


def csv_rows(response: TestResponse) -> list[dict[str, str]]:
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def jsonl_rows(response: TestResponse) -> list[dict[str, Any]]:
    assert response.mimetype == "application/jsonl"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


# --------------------------------------------------------------- the pages


def test_each_page_renders_with_data(admin: FlaskClient, directory: Directory) -> None:
    access = page(admin, "/console/access-review")
    assert table_users(access) == {
        "alice@acme.example",
        "bob@acme.example",
        "carol@acme.example",
        "dave@acme.example",
    }
    assert "team_member" in access and "Engineering" in access
    changes = page(admin, "/console/access-review/changes")
    assert "granted" in changes and "alice@acme.example" in changes
    renewal = page(admin, "/console/access-review/renewal")
    assert "Paid-seat tier" in renewal and "By month" in renewal
    drift = page(admin, "/console/access-review/drift")
    assert "Designers" in drift and "no group has this name yet" in drift
    audit = page(admin, "/console/audit")
    assert "rule.created" in audit and "user.created" in audit


def test_the_menu_offers_both_pages_and_the_tabs_mark_the_current_report(
    admin: FlaskClient, directory: Directory
) -> None:
    body = page(admin, "/console/access-review/drift")
    assert 'href="/console/access-review"' in body and 'href="/console/audit"' in body
    assert re.search(r'href="/console/access-review/drift" aria-current="page"', body)


def test_a_reviewer_reads_every_page_and_every_export(
    reviewer: FlaskClient, directory: Directory
) -> None:
    for url in PAGES:
        body = page(reviewer, url)
        assert "auditor@acme.example · Security reviewer" in body
        assert "<table" in body, url
    assert "alice@acme.example" in page(reviewer, "/console/access-review?user=alice")
    for report in REPORTS:
        for format_ in ("csv", "jsonl"):
            download(reviewer, f"/console/access-review/{report}/export?format={format_}")
    assert jsonl_rows(download(reviewer, "/console/audit/export?format=jsonl"))


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    for url in (*PAGES, "/console/access-review/access/export", "/console/audit/export"):
        response = client.get(url)
        assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"]


# ------------------------------------------------------------------ filters


def test_access_filters_narrow_the_rows(
    admin: FlaskClient, directory: Directory, session: Session
) -> None:
    base = "/console/access-review"
    assert table_users(page(admin, f"{base}?user=ALI")) == {"alice@acme.example"}
    engineering = {"alice@acme.example", "bob@acme.example"}
    assert table_users(page(admin, f"{base}?group=Engineering")) == engineering
    assert table_users(page(admin, f"{base}?role=team_member&seat=paid")) == engineering
    assert table_users(page(admin, f"{base}?status=deactivated")) == {"dave@acme.example"}
    no_seat = table_users(page(admin, f"{base}?seat=none&status=active"))
    assert "carol@acme.example" in no_seat and not no_seat & engineering
    assert table_users(page(admin, f"{base}?project=web")) == engineering
    then = page(admin, f"{base}?as_of={quote(directory.between)}")
    assert table_users(then) == engineering
    assert "No user matches" in page(admin, f"{base}?as_of=2020-01-01")


def test_change_filters_narrow_the_rows(admin: FlaskClient, directory: Directory) -> None:
    base = "/console/access-review/changes"
    assert table_users(page(admin, f"{base}?user=bob")) == {"bob@acme.example"}
    granted = page(admin, f"{base}?change=granted")
    assert set(re.findall(r"<td>(granted|seat gained|revoked)</td>", granted)) == {"granted"}
    gained = page(admin, f"{base}?change=seat_gained")
    assert table_users(gained) == {"alice@acme.example", "bob@acme.example"}
    assert "no change matches" in page(admin, f"{base}?until=2020-01-31")


def test_drift_and_audit_filters_narrow(admin: FlaskClient, directory: Directory) -> None:
    audit = page(admin, "/console/audit?user=carol@acme.example")
    assert "user.created" in audit and directory.alice.user_name not in audit
    assert str(directory.carol.id) in audit and str(directory.alice.id) not in audit
    assert "user carol@acme.example" in audit  # the target by its name, beside its id
    groups = page(admin, "/console/audit?group=Engineering&action=membership.")
    assert groups.count("group Engineering") >= 2 and "user.created" not in groups
    rules = page(admin, "/console/audit?action=rule.")
    assert "rule.created" in rules and "user.created" not in rules
    assert "No event matches" in page(admin, "/console/audit?actor=nobody")


def test_filters_that_do_not_parse_or_name_nothing_answer_400_with_the_reason(
    admin: FlaskClient, directory: Directory
) -> None:
    for url, reason in (
        ("/console/access-review?seat=gold", "seat must be one of"),
        ("/console/access-review?as_of=yesterday", "as of must be a date"),
        ("/console/access-review?group=Nobody", "Nobody"),
        ("/console/access-review?start=-1", "start must be between"),
        ("/console/access-review/changes?since=2026-02-01&until=2026-01-01", "until must not"),
        ("/console/access-review/renewal?reclaim_days=x", "reclaim_days must be a whole number"),
        ("/console/audit?user=nobody@acme.example", "nobody@acme.example"),
        ("/console/audit?after=garbage", "start from the first page"),
    ):
        body = page(admin, url, 400)
        assert reason in body, url
        assert 'role="alert"' in body
    assert "Export refused" in page(admin, "/console/access-review/access/export?format=xml", 400)
    assert "Nobody" in page(admin, "/console/audit/export?group=Nobody", 400)
    page(admin, "/console/access-review/secrets/export", 404)


# ----------------------------------------------------------------- paging


def test_tables_page_through_every_row_without_repeats(
    admin: FlaskClient, directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries_review, "PAGE_SIZE", 2)
    seen: list[str] = []
    url: str | None = "/console/access-review?status=active"
    while url is not None:
        body = page(admin, url)
        seen += re.findall(r"<td>([a-z]+@acme\.example)</td>", body)
        found = re.search(r'<a href="([^"]+)">Next page</a>', body)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) >= 3
    assert {"alice@acme.example", "bob@acme.example", "carol@acme.example"} <= set(seen)
    assert "Previous page" in page(admin, "/console/access-review?status=active&start=2")


def test_the_audit_trail_pages_by_sequence_with_no_gaps(
    admin: FlaskClient, directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries_review, "PAGE_SIZE", 5)
    sequence: list[int] = []
    url: str | None = "/console/audit"
    while url is not None:
        body = page(admin, url)
        sequence += [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", body)]
        found = re.search(r'<a href="([^"]+)">Next page</a>', body)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(sequence) > 10
    assert sequence == list(range(1, len(sequence) + 1))


# ----------------------------------------------------------------- exports


def test_exports_stream_the_rows_the_filters_select(
    admin: FlaskClient, directory: Directory
) -> None:
    base = "/console/access-review/access/export"
    rows = csv_rows(download(admin, f"{base}?format=csv&group=Engineering"))
    assert {r["userName"] for r in rows} == {"alice@acme.example", "bob@acme.example"}
    assert {r["role"] for r in rows} == {"team_member"}
    lines = jsonl_rows(download(admin, f"{base}?format=jsonl&user=carol"))
    assert [r["userName"] for r in lines] == ["carol@acme.example"]
    response = download(admin, f"{base}?format=csv&as_of=2020-01-01&start=50")
    assert re.search(
        r'filename="acme-access-20200101T235959Z\.csv"', response.headers["Content-Disposition"]
    )
    assert csv_rows(response) == []
    changes = csv_rows(download(admin, "/console/access-review/changes/export?change=granted"))
    assert changes and {r["change"] for r in changes} == {"granted"}
    drift = jsonl_rows(download(admin, "/console/access-review/drift/export?format=jsonl"))
    assert {r["kind"] for r in drift} >= {"missing_rule_group"}
    renewal = csv_rows(download(admin, "/console/access-review/renewal/export"))
    assert renewal and set(renewal[0]) >= {"month", "peak_paid", "tier"}


def test_the_audit_export_streams_the_filtered_trail(
    admin: FlaskClient, directory: Directory
) -> None:
    events = jsonl_rows(download(admin, "/console/audit/export?format=jsonl&action=rule."))
    assert events and {e["action"] for e in events} == {"rule.created", "rule.bound"}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    every = csv_rows(download(admin, "/console/audit/export"))
    assert [int(r["seq"]) for r in every] == list(range(1, len(every) + 1))


# ---------------------------------------------------------------- tenancy


def test_another_organizations_data_never_shows(
    admin: FlaskClient, directory: Directory, other_org: Organization
) -> None:
    for url in PAGES:
        body = page(admin, url)
        assert "globex" not in body.lower() and str(other_org.id) not in body, url
    for report in REPORTS:
        for format_ in ("csv", "jsonl"):
            exported = download(admin, f"/console/access-review/{report}/export?format={format_}")
            assert "globex" not in exported.get_data(as_text=True).lower()
    trail = download(admin, "/console/audit/export?format=jsonl").get_data(as_text=True)
    assert "globex" not in trail.lower() and str(other_org.id) not in trail
    # Globex's user and group are unknown here, as if they did not exist.
    assert "not found" in page(admin, "/console/audit?user=spy@globex.example", 400)
    page(admin, "/console/access-review?group=Globex Staff", 400)


# ------------------------------------------------------------ verification


def test_verify_shows_the_chain_intact_then_the_first_broken_link(
    admin: FlaskClient, directory: Directory, session: Session, acme: Organization
) -> None:
    body = page(admin, "/console/audit/verify")
    assert "Verified:" in body and "every link intact" in body
    assert "Verified:" not in page(admin, "/console/audit")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.org_id == acme.id, AuditEvent.seq == 3)
        .values(actor="mallory")
    )
    session.commit()
    broken = page(admin, "/console/audit/verify")
    assert "Broken" in broken and "event #3 was altered" in broken
