"""SCIM client operations the scenarios time, against our service or the reference server.

Only plain RFC 7644 requests, so the same code measures both servers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.harness import HttpClient, Measurement, expect, timed_runs

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
NO_WORK = "no work: GET /ServiceProviderConfig"


def user_body(user_name: str, external_id: str) -> dict[str, Any]:
    """A user as Okta creates one: names, a primary work email, active."""
    local = user_name.split("@", 1)[0]
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "externalId": external_id,
        "name": {"givenName": "Bench", "familyName": local},
        "displayName": f"Bench {local}",
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def add_members(user_ids: Sequence[str]) -> dict[str, Any]:
    return patch({"op": "add", "path": "members", "value": [{"value": u} for u in user_ids]})


def remove_member(user_id: str) -> dict[str, Any]:
    # Okta's form; the reference server and ours both take the value filter.
    return patch({"op": "remove", "path": f'members[value eq "{user_id}"]'})


def requests_doing_nothing(
    client: HttpClient, scenario: str, requests: int, concurrency: int
) -> Measurement:
    """GET /ServiceProviderConfig: an authenticated request that reads no user, the ceiling
    of a server's HTTP, authentication and JSON layers under this client."""

    def read(_: int) -> str | None:
        return expect(client.request("GET", "/ServiceProviderConfig"), 200)

    return timed_runs(
        scenario,
        NO_WORK,
        list(range(requests)),
        read,
        concurrency=concurrency,
    )


def create_users(
    client: HttpClient,
    scenario: str,
    people: Sequence[tuple[str, str]],
    concurrency: int,
    operation: str = "create user (POST /Users)",
) -> tuple[Measurement, list[str]]:
    """POST each (userName, externalId); the measurement and the new ids, in input order."""
    ids: list[str] = [""] * len(people)
    lock = threading.Lock()

    def create(index: int) -> str | None:
        name, external = people[index]
        response = client.request("POST", "/Users", user_body(name, external))
        problem = expect(response, 201)
        if problem is None:
            with lock:
                ids[index] = str(response.json()["id"])
        return problem

    measurement = timed_runs(
        scenario, operation, list(range(len(people))), create, concurrency=concurrency
    )
    return measurement, ids


def lookups(
    client: HttpClient,
    scenario: str,
    attribute: str,
    values: Sequence[str],
    concurrency: int,
) -> Measurement:
    """GET /Users?filter=<attribute> eq "<value>", each expected to find exactly one user."""

    def lookup(value: str) -> str | None:
        query = {"filter": f'{attribute} eq "{value}"'}
        response = client.request("GET", "/Users", query=query)
        problem = expect(response, 200)
        if problem is None and response.json().get("totalResults") != 1:
            problem = f"{attribute} eq {value!r} found {response.json().get('totalResults')}"
        return problem

    return timed_runs(
        scenario, f"lookup {attribute} eq", list(values), lookup, concurrency=concurrency
    )


def warm_up(client: HttpClient, label: str, requests: int, concurrency: int) -> None:
    """Exercise every request kind a few times, unmeasured, then delete what it made: the first
    requests a worker serves pay for imports, connections and compiled-statement caches."""
    people = [(f"warmup-{label}-{i}@example.com", f"warmup-{label}-{i}") for i in range(requests)]
    _, ids = create_users(client, "warm-up", people, concurrency)
    lookups(client, "warm-up", "userName", [p[0] for p in people], concurrency)
    lookups(client, "warm-up", "externalId", [p[1] for p in people], concurrency)
    live = [i for i in ids if i]
    group = create_group(client, f"Warm-up {label}", live[:2])
    client.request("PATCH", f"/Groups/{group}", add_members(live[2:]))
    client.request("PATCH", f"/Groups/{group}", remove_member(live[0]))
    client.request("GET", "/Users", query={"startIndex": 1, "count": 100})
    client.request("DELETE", f"/Groups/{group}")
    deactivate = patch({"op": "replace", "path": "active", "value": False})
    timed_runs(
        "warm-up",
        "deactivate",
        live,
        lambda i: expect(client.request("PATCH", f"/Users/{i}", deactivate), 200, 204),
        concurrency,
    )
    timed_runs(
        "warm-up",
        "delete",
        live,
        lambda i: expect(client.request("DELETE", f"/Users/{i}"), 204),
        concurrency,
    )


def create_group(client: HttpClient, name: str, member_ids: Sequence[str] = ()) -> str:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name}
    if member_ids:
        body["members"] = [{"value": u} for u in member_ids]
    response = client.request("POST", "/Groups", body)
    problem = expect(response, 201)
    if problem is not None:
        raise RuntimeError(f"creating group {name!r}: {problem}")
    return str(response.json()["id"])


def batch_add(
    client: HttpClient,
    scenario: str,
    group_id: str,
    member_ids: Sequence[str],
    batch: int = 50,
) -> Measurement:
    """Add members to one group in PATCHes of `batch`, one after the other as an IdP does."""
    chunks = [list(member_ids[i : i + batch]) for i in range(0, len(member_ids), batch)]

    def send(chunk: list[str]) -> str | None:
        return expect(client.request("PATCH", f"/Groups/{group_id}", add_members(chunk)), 200, 204)

    return timed_runs(
        scenario,
        f"add {len(member_ids):,} members, PATCHes of {batch}",
        chunks,
        send,
        unit="members",
        items_per_task=batch,
        note=f"latency per PATCH of {batch}",
    )


@dataclass(frozen=True, slots=True)
class GroupUnderTest:
    label: str  # e.g. "50,000-member group"
    group_id: str
    mover_id: str  # a user outside the group, added then removed again


def single_member_patches(
    client: HttpClient, scenario: str, groups: Sequence[GroupUnderTest], iterations: int
) -> list[Measurement]:
    """Add one member then remove it again, alternating between the groups so that drift in the
    machine's load hits them alike. Sequential: one group's changes are serial anyway."""
    timings: dict[tuple[str, str], list[float]] = {
        (g.label, action): [] for g in groups for action in ("add", "remove")
    }
    errors: dict[tuple[str, str], list[str]] = {key: [] for key in timings}
    for _ in range(iterations):
        for group in groups:
            path = f"/Groups/{group.group_id}"
            for action, body in (
                ("add", add_members([group.mover_id])),
                ("remove", remove_member(group.mover_id)),
            ):
                started = time.perf_counter()
                response = client.request("PATCH", path, body)
                timings[(group.label, action)].append(time.perf_counter() - started)
                problem = expect(response, 200, 204)
                if problem is not None:
                    errors[(group.label, action)].append(problem)
    return [
        Measurement(
            scenario=scenario,
            operation=f"1-member PATCH {action}, {label}",
            latencies=latencies,
            elapsed=sum(latencies),
            items=len(latencies),
            errors=len(errors[(label, action)]),
            first_error=errors[(label, action)][0] if errors[(label, action)] else "",
        )
        for (label, action), latencies in timings.items()
    ]
