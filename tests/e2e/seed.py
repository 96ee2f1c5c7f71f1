"""An organization worth looking at in a browser: people in groups, projects, mapping rules that
give them roles, a contract; everything made through the provisioning service, committed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from uuid import UUID

from flask import Flask

from app import provisioning
from app.db import unit_of_work
from app.provisioning import Actor, GroupSpec, ProvisioningService, RuleSpec, UserSpec

IDP = Actor(kind="scim", label="okta")
DOMAIN = "acme.example"
PEOPLE = (
    ("Ada", "Lovelace", "Engineering"),
    ("Grace", "Hopper", "Engineering"),
    ("Alan", "Turing", "Engineering"),
    ("Edsger", "Dijkstra", "Engineering"),
    ("Susan", "Kare", "Design"),
    ("Dieter", "Rams", "Design"),
    ("Paula", "Scher", "Design"),
    ("Linus", "Pauling", "Contractors"),
    ("Rosalind", "Franklin", "Contractors"),
    ("Claude", "Shannon", None),
)
PROJECTS = (("web", "Website relaunch"), ("mobile", "Mobile app"))
RULES = (
    RuleSpec("displayName", "Engineering", "team_member"),
    RuleSpec("displayName", "Design", "team_member", "web"),
    RuleSpec("displayName", "Contractors", "client", "mobile"),
)
_serial = itertools.count(1)


@dataclass(frozen=True, slots=True)
class SeededOrg:
    """What a test needs to know about the organization it was given."""

    id: UUID
    slug: str
    name: str
    admin_email: str
    user_emails: tuple[str, ...]
    groups: tuple[str, ...]


def email_of(given: str, family: str) -> str:
    return f"{given}.{family}@{DOMAIN}".lower()


def seed_organization(app: Flask) -> SeededOrg:
    """A new organization (slug acme-N, unique in the database) with people, groups and rules."""
    slug = f"acme-{next(_serial)}"
    with app.app_context(), unit_of_work() as session:
        organization = provisioning.create_organization(
            session, "Acme Corporation", slug, paid_seats=25
        )
        provisioning.create_token(session, organization, "okta")
        service = ProvisioningService(session, organization, IDP)
        for key, name in PROJECTS:
            service.create_project(key, name)
        members: dict[str, list[str]] = {}
        for given, family, team in PEOPLE:
            email = email_of(given, family)
            user = service.create_user(
                UserSpec(
                    user_name=email,
                    external_id=f"okta-{given.lower()}",
                    attributes={
                        "given_name": given,
                        "family_name": family,
                        "display_name": f"{given} {family}",
                    },
                    multi_values={"emails": [{"value": email, "primary": True}]},
                )
            )
            if team is not None:
                members.setdefault(team, []).append(str(user.id))
        for team, member_ids in members.items():
            service.create_group(GroupSpec(display_name=team, member_ids=member_ids))
        for rule in RULES:
            service.create_rule(rule)
        org_id = organization.id
    emails = tuple(email_of(given, family) for given, family, _ in PEOPLE)
    return SeededOrg(
        id=org_id,
        slug=slug,
        name="Acme Corporation",
        admin_email=emails[0],
        user_emails=emails,
        groups=tuple(members),
    )
