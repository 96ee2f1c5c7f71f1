"""The console's directory pages: users with filters and keyset paging, one user's page (the
group behind each role, why paid, seat history, audit trail), groups with member counts and
the rules that use them. Data made through the provisioning service."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.console import queries
from app.models import Organization
from app.provisioning import OPERATOR, GroupSpec, ProvisioningService, RuleSpec, UserSpec
from tests.console.directory_data import Directory, make_directory, person

USER_LINK = re.compile(r'href="/console/users/[0-9a-f-]{36}">([^<]+)</a>')
GROUP_LINK = re.compile(r'href="/console/groups/[0-9a-f-]{36}">([^<]+)</a>')
NEXT = re.compile(r'<a href="(/console/[^"]+)">Next page</a>')


@pytest.fixture
def directory(session: Session, acme: Organization) -> Directory:
    return make_directory(session, acme)


def page_of(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def listed_users(client: FlaskClient, url: str) -> list[str]:
    return USER_LINK.findall(page_of(client, url))


def next_link(html: str) -> str | None:
    found = NEXT.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_users_page_lists_everyone_by_user_name_with_seat_and_status(
    admin: FlaskClient, directory: Directory
) -> None:
    html = page_of(admin, "/console/users")
    assert USER_LINK.findall(html) == [
        "ada@acme.example",
        "bob@acme.example",
        "cy@acme.example",
        "dee@acme.example",
    ]
    assert '<span class="badge paid">paid</span>' in html
    assert '<span class="badge free">free</span>' in html
    assert '<span class="badge inactive">deactivated</span>' in html
    assert "Ada Lovelace" in html
    # Every filter has a label, and the table's headers have their scope.
    for name in ("q", "seat", "role", "project", "group", "status", "source"):
        assert f'<label for="{name}">' in html and f'id="{name}"' in html
    assert "<th>" not in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("seat=paid", ["ada@acme.example", "cy@acme.example"]),
        ("seat=free", ["bob@acme.example"]),
        ("seat=none", ["dee@acme.example"]),
        ("role=client", ["bob@acme.example", "cy@acme.example"]),
        ("role=team_member", ["ada@acme.example", "cy@acme.example"]),
        # In "web" Ada and Cy are Team Members; Bob's Client in every project reaches it too.
        ("project=web", ["ada@acme.example", "bob@acme.example", "cy@acme.example"]),
        ("project=web&role=client", ["bob@acme.example"]),
        ("group=support", ["bob@acme.example", "cy@acme.example", "dee@acme.example"]),
        ("group=Support&status=active", ["bob@acme.example", "cy@acme.example"]),
        ("status=deactivated", ["dee@acme.example"]),
        ("status=deprovisioned", []),
        (
            "source=scim",
            ["ada@acme.example", "bob@acme.example", "cy@acme.example", "dee@acme.example"],
        ),
        ("source=csv", []),
        ("q=LOVELACE", ["ada@acme.example"]),
        ("q=bob@", ["bob@acme.example"]),
        (
            "q=acme&seat=paid&group=Engineering&role=team_member",
            ["ada@acme.example", "cy@acme.example"],
        ),
        ("group=Nobody", []),
        # An unknown choice is ignored rather than refused.
        (
            "seat=gold",
            ["ada@acme.example", "bob@acme.example", "cy@acme.example", "dee@acme.example"],
        ),
    ],
)
def test_filters_narrow_the_users(
    admin: FlaskClient, directory: Directory, query: str, expected: list[str]
) -> None:
    assert listed_users(admin, f"/console/users?{query}") == expected


def test_a_filter_shows_as_chosen_and_the_empty_result_says_so(
    admin: FlaskClient, directory: Directory
) -> None:
    html = page_of(admin, "/console/users?seat=pending&group=Support")
    assert '<option value="pending" selected>' in html
    assert 'value="Support"' in html
    assert "No user matches these filters." in html


def test_paging_continues_after_the_last_user_with_the_filters_kept(
    admin: FlaskClient,
    session: Session,
    acme: Organization,
    directory: Directory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    service = ProvisioningService(session, acme, OPERATOR)
    for n in range(3):
        person(service, f"zed{n}@acme.example", f"Zed {n}")
    session.commit()

    seen: list[str] = []
    url: str | None = "/console/users?status=active"
    pages = 0
    while url is not None:
        html = page_of(admin, url)
        rows = USER_LINK.findall(html)
        assert 1 <= len(rows) <= 2
        seen += rows
        url = next_link(html)
        assert url is None or "status=active" in url
        pages += 1
    assert pages == 3
    assert seen == [
        "ada@acme.example",
        "bob@acme.example",
        "cy@acme.example",
        "zed0@acme.example",
        "zed1@acme.example",
        "zed2@acme.example",
    ]
    assert "First page" in page_of(admin, next_link(page_of(admin, "/console/users")) or "")


def test_a_cursor_that_is_not_ours_is_a_400_page(admin: FlaskClient, directory: Directory) -> None:
    for url in ("/console/users?after=garbage", "/console/groups?after=WyJhIiwiYiJd"):
        response = admin.get(url)
        assert response.status_code == 400
        assert "page link is not valid" in response.get_data(as_text=True)


def test_user_page_shows_profile_groups_granting_group_why_paid_and_history(
    admin: FlaskClient, directory: Directory
) -> None:
    html = page_of(admin, f"/console/users/{directory.cy.id}")
    assert "<h1>cy@acme.example</h1>" in html
    assert "Cy Twombly" in html
    assert GROUP_LINK.findall(html)[:2] == ["Engineering", "Support"]
    roles = html[html.index('id="roles-heading"') : html.index('id="why-heading"')]
    web = roles[roles.index('<th scope="row">web</th>') :]
    assert "Team Member" in web
    assert f'href="/console/groups/{directory.engineering.id}">Engineering</a>' in web
    everywhere = roles[roles.index('<th scope="row">every project</th>') :]
    assert "Client" in everywhere and "Support</a>" in everywhere
    why = html[html.index('id="why-heading"') : html.index('id="seat-history-heading"')]
    assert "Team Member in web is a paid role" in why
    assert "<strong>Engineering</strong>" in why and "Support" not in why
    history = html[html.index('id="seat-history-heading"') : html.index('id="audit-heading"')]
    assert "<td>none</td><td>paid</td>" in history
    audit = html[html.index('id="audit-heading"') :]
    for action in ("user.created", "membership.added", "role.granted", "seat.changed"):
        assert f"<code>{action}</code>" in audit


def test_user_page_of_a_free_user_and_of_a_deactivated_one(
    admin: FlaskClient, directory: Directory
) -> None:
    bob = page_of(admin, f"/console/users/{directory.bob.id}")
    assert "No paid role: holds a free seat." in bob
    dee = page_of(admin, f"/console/users/{directory.dee.id}")
    assert '<span class="badge inactive">deactivated</span>' in dee
    assert "<code>user.deactivated</code>" in dee
    assert "No role in any project." in dee


def test_groups_page_shows_member_counts_and_the_rules_that_use_each_group(
    admin: FlaskClient, directory: Directory
) -> None:
    html = page_of(admin, "/console/groups")
    assert GROUP_LINK.findall(html) == ["Alumni", "Engineering", "Support"]
    rows = {
        name: html[html.index(f">{name}</a>") :].split("</tr>")[0]
        for name in GROUP_LINK.findall(html)
    }
    assert "<td>0</td>" in rows["Alumni"] and "no rule" in rows["Alumni"]
    assert "<code>ext-alumni</code>" in rows["Alumni"]
    assert "<td>2</td>" in rows["Engineering"]
    assert "Team Member in web" in rows["Engineering"] and "badge paid" in rows["Engineering"]
    assert "<td>3</td>" in rows["Support"]
    assert "Client in every project" in rows["Support"]
    assert GROUP_LINK.findall(page_of(admin, "/console/groups?q=ENG")) == ["Engineering"]


def test_groups_paging_continues(
    admin: FlaskClient, directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    first = page_of(admin, "/console/groups")
    assert GROUP_LINK.findall(first) == ["Alumni", "Engineering"]
    second_url = next_link(first)
    assert second_url is not None
    second = page_of(admin, second_url)
    assert GROUP_LINK.findall(second) == ["Support"]
    assert next_link(second) is None


def test_group_page_shows_its_rules_and_members_paged(
    admin: FlaskClient,
    session: Session,
    acme: Organization,
    directory: Directory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    html = page_of(admin, f"/console/groups/{directory.support.id}")
    assert "<h1>Support</h1>" in html
    assert "<dt>Members</dt><dd>3</dd>" in html
    assert "displayName “Support”" in html and "<td>Client</td>" in html
    assert USER_LINK.findall(html) == ["bob@acme.example", "cy@acme.example"]
    rest = next_link(html)
    assert rest is not None and rest.startswith(f"/console/groups/{directory.support.id}?after=")
    assert USER_LINK.findall(page_of(admin, rest)) == ["dee@acme.example"]
    alumni = page_of(admin, f"/console/groups/{directory.empty.id}")
    assert "No mapping rule uses this group" in alumni and "No member." in alumni


def test_a_rule_naming_a_group_by_id_is_listed_with_it(
    admin: FlaskClient, session: Session, acme: Organization, directory: Directory
) -> None:
    service = ProvisioningService(session, acme, OPERATOR)
    service.create_rule(RuleSpec("id", str(directory.empty.id), "view_only"))
    session.commit()
    html = page_of(admin, f"/console/groups/{directory.empty.id}")
    assert "<td>View Only</td>" in html


def test_another_organizations_user_and_group_are_404_pages(
    admin: FlaskClient, session: Session, directory: Directory, other_org: Organization
) -> None:
    service = ProvisioningService(session, other_org, OPERATOR)
    spy = service.create_user(UserSpec(user_name="mole@globex.example"))
    group = service.create_group(GroupSpec(display_name="Moles", member_ids=[str(spy.id)]))
    session.commit()
    for url in (
        f"/console/users/{spy.id}",
        f"/console/groups/{group.id}",
        f"/console/users/{uuid4()}",
        f"/console/groups/{uuid4()}",
    ):
        response = admin.get(url)
        assert response.status_code == 404, url
        assert "belongs to another organization" in response.get_data(as_text=True)
    assert admin.get("/console/users/not-a-uuid").status_code == 404
    assert "globex" not in page_of(admin, "/console/users")
    assert "Globex Staff" not in page_of(admin, "/console/groups")
    assert listed_users(admin, "/console/users?group=Globex Staff") == []


def test_reviewer_reads_every_directory_page(reviewer: FlaskClient, directory: Directory) -> None:
    assert "ada@acme.example" in page_of(reviewer, "/console/users?seat=paid")
    assert "Why paid" in page_of(reviewer, f"/console/users/{directory.ada.id}")
    assert "Engineering" in page_of(reviewer, "/console/groups")
    assert "ada@acme.example" in page_of(reviewer, f"/console/groups/{directory.engineering.id}")
    nav = page_of(reviewer, "/console/users")
    assert 'href="/console/users" aria-current="page">Users</a>' in nav
    assert 'href="/console/groups">Groups</a>' in nav


def test_signed_out_browser_is_sent_to_sign_in(client: FlaskClient, directory: Directory) -> None:
    response = client.get(f"/console/users/{directory.ada.id}")
    assert response.status_code == 302
    assert "/console/sign-in" in response.headers["Location"]


def test_audit_events_read_as_one_line_each(admin: FlaskClient, directory: Directory) -> None:
    html = page_of(admin, f"/console/users/{directory.dee.id}")
    audit = html[html.index('id="audit-heading"') :]
    assert "active: yes → no" in audit  # user.deactivated
    assert "seat: none" in audit  # seat.changed, released


@pytest.mark.parametrize(
    ("before", "after", "line"),
    [
        (None, {"seat": "paid", "pending": False}, "pending: no · seat: paid"),
        ({"active": True}, {"active": False}, "active: yes → no"),
        (None, {"role": "client", "sources": [{"rule_id": "r"}]}, "role: client"),
        ({"user_id": "u"}, None, "user_id: u"),
        (None, None, ""),
    ],
)
def test_describe_change(
    before: dict[str, object] | None, after: dict[str, object] | None, line: str
) -> None:
    assert queries.describe_change(before, after) == line
