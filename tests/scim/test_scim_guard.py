"""The mass-grant guard counts a SCIM /Bulk as one request (issue #13, item 2)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import HeldChange, Organization, User
from app.provisioning import Actor, ProvisioningService, RuleSpec
from scim.discovery import BULK_REQUEST_SCHEMA, PATCH_OP_SCHEMA
from tests.support import ScimClient


def test_a_bulk_of_one_member_patches_is_held_like_one_patch(
    scim: ScimClient, session: Session, organization: tuple[Organization, str]
) -> None:
    service = ProvisioningService(session, organization[0], Actor(kind="api", label="admin"))
    service.set_guard_thresholds(
        max_new_paid_seats=4, max_new_paid_share=1.0, max_new_project_admins=10
    )
    service.create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    session.commit()
    group = scim.create_group("Everyone")
    users = [scim.create_user(f"b{n}@acme.example")["id"] for n in range(5)]
    patches = [
        {
            "method": "PATCH",
            "path": f"/Groups/{group['id']}",
            "data": {
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}],
            },
        }
        for user in users
    ]
    response = scim.post("/Bulk", {"schemas": [BULK_REQUEST_SCHEMA], "Operations": patches})
    assert response.status_code == 200
    assert all(r["status"] in ("200", "204") for r in response.json["Operations"])
    paid = session.scalars(select(User.id).where(User.seat == "paid")).all()
    assert len(paid) == 4
    [held] = session.scalars(select(HeldChange)).all()
    assert held.kind == "directory" and held.user_ids == [users[4]]
    assert "5 new paid seats exceed the limit of 4 (4 earlier in this request)" in held.reasons
