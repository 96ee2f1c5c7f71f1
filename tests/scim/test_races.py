"""Racing clients (issue #16): parallel creates of one userName or displayName give one 201 and
409 `uniqueness` to every other racer, never a 500."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import create_app
from app.config import Settings
from app.provisioning import OPERATOR, GroupSpec, ProvisioningService, UserSpec
from tests.support import ScimClient, make_org, someone_waits_for_a_lock

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
# Each request may take two pooled connections (its transaction and the rate limiter's count):
# seven racers fit the default pool of 15 without waiting for one another's connections.
RACERS = 7


def race(scim_for: Any, path: str, body: dict[str, Any]) -> list[Any]:
    """POST `body` from RACERS clients released at once; their responses."""
    start = threading.Barrier(RACERS)
    responses: list[Any] = [None] * RACERS

    def racer(index: int) -> None:
        client = scim_for()
        start.wait()
        responses[index] = client.post(path, body)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/Users", {"schemas": [USER_SCHEMA], "userName": "racer@acme.example"}),
        ("/Users", {"schemas": [USER_SCHEMA], "userName": "x@acme.example", "externalId": "e1"}),
        ("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Racers"}),
    ],
)
def test_parallel_creates_of_one_name_give_one_201_and_409s(
    separate_database: Settings, path: str, body: dict[str, Any]
) -> None:
    app = create_app(separate_database)
    with app.app_context(), app.extensions["sessions"]() as session:
        _, secret = make_org(session, "acme")
    responses = race(lambda: ScimClient(app.test_client(), secret, uuid.uuid4()), path, body)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: RACERS - 1}, [
        r.json for r in responses if r.status_code >= 500
    ]
    for response in responses:
        if response.status_code == 409:
            assert response.json["scimType"] == "uniqueness"
    app.extensions["engine"].dispose()


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    ("path", "body", "create"),
    [
        (
            "/Users",
            {"schemas": [USER_SCHEMA], "userName": "late@acme.example"},
            lambda service: service.create_user(UserSpec(user_name="late@acme.example")),
        ),
        (
            "/Groups",
            {"schemas": [GROUP_SCHEMA], "displayName": "Late"},
            lambda service: service.create_group(GroupSpec(display_name="Late")),
        ),
    ],
)
def test_a_create_that_loses_the_race_at_the_unique_index_is_a_409(
    separate_database: Settings, path: str, body: dict[str, Any], create: Any
) -> None:
    # Another transaction has inserted the same name and not committed: the request's own check
    # cannot see it, its insert waits on the unique index, and fails once the other commits.
    app = create_app(separate_database)
    engine: Engine = app.extensions["engine"]
    with app.app_context(), app.extensions["sessions"]() as session:
        organization, secret = make_org(session, "acme")
    scim = ScimClient(app.test_client(), secret, organization.id)
    with Session(engine) as other, engine.connect() as watcher:
        create(ProvisioningService(other, organization.id, OPERATOR))
        other.flush()
        result: list[Any] = []
        racer = threading.Thread(target=lambda: result.append(scim.post(path, body)))
        racer.start()
        table = "users" if path == "/Users" else "groups"
        assert someone_waits_for_a_lock(watcher, 30, f"INSERT INTO {table}%")
        other.commit()
        racer.join()
    assert result[0].status_code == 409, result[0].json
    assert result[0].json["scimType"] == "uniqueness"
    engine.dispose()
