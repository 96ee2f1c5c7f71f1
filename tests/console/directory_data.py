"""A small directory made through the provisioning service, for the console's directory and
overview pages: groups with mapping rules, so users have roles and seats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.models import Group, Organization, User
from app.provisioning import (
    OPERATOR,
    ContractSpec,
    GroupSpec,
    ProvisioningService,
    RuleSpec,
    UserSpec,
)


@dataclass(frozen=True, slots=True)
class Directory:
    ada: User  # Engineering: Team Member in web (paid)
    bob: User  # Support: Client everywhere (free)
    cy: User  # Engineering and Support
    dee: User  # Support, deactivated
    engineering: Group
    support: Group
    empty: Group  # no members, no rules


def person(service: ProvisioningService, user_name: str, display_name: str) -> User:
    return service.create_user(
        UserSpec(
            user_name=user_name,
            attributes={"display_name": display_name},
            multi_values={"emails": [{"value": user_name, "primary": True, "type": "work"}]},
        )
    )


def make_directory(session: Session, organization: Organization, tier: int = 5) -> Directory:
    """Four people in two groups with rules; a contract over this year."""
    service = ProvisioningService(session, organization, OPERATOR)
    this_year = date.today().year
    service.set_contract(
        ContractSpec(
            paid_seat_tier=tier,
            starts_on=date(this_year, 1, 1),
            ends_on=date(this_year, 12, 31),
        )
    )
    service.create_project("web", "Website")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member", "web"))
    service.create_rule(RuleSpec("displayName", "Support", "client"))
    ada = person(service, "ada@acme.example", "Ada Lovelace")
    bob = person(service, "bob@acme.example", "Bob Builder")
    cy = person(service, "cy@acme.example", "Cy Twombly")
    dee = person(service, "dee@acme.example", "Dee Dee")
    engineering = service.create_group(
        GroupSpec(display_name="Engineering", member_ids=[str(ada.id), str(cy.id)])
    )
    support = service.create_group(
        GroupSpec(display_name="Support", member_ids=[str(bob.id), str(cy.id), str(dee.id)])
    )
    empty = service.create_group(GroupSpec(display_name="Alumni", external_id="ext-alumni"))
    service.replace_user(
        dee.id,
        UserSpec(
            user_name=dee.user_name,
            is_active=False,
            attributes={"display_name": "Dee Dee"},
            multi_values={"emails": [{"value": dee.user_name, "primary": True}]},
        ),
    )
    session.commit()
    return Directory(ada, bob, cy, dee, engineering, support, empty)
