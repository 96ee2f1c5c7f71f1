"""From the IdP to Blue: a SCIM deactivation, its events written in the request's transaction,
delivered by the worker to a real receiver on 127.0.0.1 and verified with `standardwebhooks`."""

from __future__ import annotations

from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from app.delivery import Worker
from app.models import Organization
from app.provisioning import SYSTEM, ProvisioningService, RuleSpec
from scim.discovery import PATCH_OP_SCHEMA
from tests.app.webhooks.support import Receiver, add_endpoint
from tests.support import ScimClient


def test_a_scim_deactivation_reaches_blue_signed_with_the_users_new_state(
    session: Session,
    organization: tuple[Organization, str],
    scim: ScimClient,
    receiver: Receiver,
    worker: Worker,
) -> None:
    org, _ = organization
    _, secret = add_endpoint(session, org.id, receiver.url)
    ada = scim.create_user("ada@acme.example")
    scim.create_group("Engineering", [ada["id"]])
    ProvisioningService(session, org.id, SYSTEM).create_rule(
        RuleSpec("displayName", "Engineering", "team_member")
    )
    session.commit()
    worker.run_once()
    before = len(receiver.accepted)

    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert scim.patch(f"/Users/{ada['id']}", body).status_code == 200
    tally = worker.run_once()

    verified = [Webhook(secret).verify(r.body, r.headers) for r in receiver.accepted[before:]]
    assert tally.delivered == len(verified) > 0
    by_type = {document["type"]: document["data"] for document in verified}
    assert by_type["user.deactivated"]["user_id"] == ada["id"]
    assert by_type["user.deactivated"]["payload"]["active"] is False
    assert by_type["access.changed"]["payload"]["roles"] == []
    assert by_type["seat.changed"]["payload"]["status"] == "released"
    # In the order they were committed: one user's events go out one at a time, by seq.
    seqs = [document["data"]["seq"] for document in verified]
    assert seqs == sorted(seqs)
    # A PATCH that changes nothing emits nothing, so nothing more is delivered.
    assert scim.patch(f"/Users/{ada['id']}", body).status_code == 200
    assert worker.run_once().delivered == 0
