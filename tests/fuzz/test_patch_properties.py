"""Property: random PATCH sequences (scim/patch/) through the SCIM API never corrupt a user.

After every PATCH of a random sequence: no 5xx; a refused PATCH changes nothing (a PATCH is
atomic, RFC 7644 §3.5.2); the user reads back as a representation the service itself accepts
(PUT back unchanged); at most one email is primary (RFC 7643 §2.4); id and meta.created
(readOnly) never change; and replaying an accepted one-operation PATCH changes nothing more
(it may be refused: a filter that matched may match no more).

Replays are checked for one operation only: in a longer PATCH a later operation may change
what an earlier one selects (`emails[primary eq true].value` then `emails[type eq "work"].primary`
false), so the whole is not idempotent even though each operation is.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from scim.discovery import PATCH_OP_SCHEMA
from tests.fuzz.profiles import profile
from tests.support import ScimClient

names = st.sampled_from(["Ann", "ann", "Bo", "", "Zoë"])
addresses = st.sampled_from(["a@x.example", "A@x.example", "b@x.example"])
types = st.sampled_from(["work", "home", "other"])
email = st.fixed_dictionaries(
    {"value": addresses}, optional={"type": types, "primary": st.booleans()}
)
emails = st.lists(email, max_size=3)
filtered = st.sampled_from(
    ['emails[type eq "work"]', 'emails[type eq "home"]', "emails[primary eq true]"]
)

operation = st.one_of(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace"]),
            "path": st.sampled_from(["displayName", "title", "name.givenName", "nickName"]),
            "value": names,
        }
    ),
    st.fixed_dictionaries(
        {"op": st.just("remove"), "path": st.sampled_from(["title", "displayName", "emails"])}
    ),
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace"]), "path": st.just("emails"), "value": emails}
    ),
    st.fixed_dictionaries(
        {"op": st.just("replace"), "path": filtered.map(lambda f: f + ".value"), "value": addresses}
    ),
    st.fixed_dictionaries(
        {
            "op": st.just("replace"),
            "path": filtered.map(lambda f: f + ".primary"),
            "value": st.booleans(),
        }
    ),
    st.fixed_dictionaries({"op": st.just("remove"), "path": filtered}),
    st.fixed_dictionaries(
        {"op": st.just("replace"), "path": st.just("active"), "value": st.booleans()}
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace"]),
            "value": st.fixed_dictionaries({}, optional={"displayName": names, "emails": emails}),
        }
    ),
    # readOnly: refused or ignored, never applied
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace"]),
            "path": st.sampled_from(["id", "meta.created", "groups"]),
            "value": st.just("00000000-0000-4000-8000-000000000000"),
        }
    ),
)
patches = st.lists(st.lists(operation, min_size=1, max_size=3), min_size=1, max_size=4)
serial = itertools.count()


def content(user: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a user, without the meta that every write moves."""
    return {key: value for key, value in user.items() if key != "meta"}


def check_invariants(user: dict[str, Any], first: dict[str, Any]) -> None:
    assert user["id"] == first["id"]
    assert user["meta"]["created"] == first["meta"]["created"]
    assert sum(1 for e in user.get("emails", []) if e.get("primary")) <= 1, user


def reads_back(scim: ScimClient, user: dict[str, Any]) -> None:
    """The representation is valid input: PUT back, it is accepted and changes nothing."""
    put = scim.put(f"/Users/{user['id']}", content(user))
    assert put.status_code == 200, (put.json, user)
    assert content(put.json) == content(user)


@profile(short=15)
@given(sequence=patches)
def test_random_patch_sequences_keep_the_user_whole(
    scim: ScimClient, sequence: list[list[dict[str, Any]]]
) -> None:
    first = scim.create_user(
        f"fuzz{next(serial)}", emails=[{"value": "a@x.example", "type": "work", "primary": True}]
    )
    url = f"/Users/{first['id']}"
    for operations in sequence:
        note(f"PATCH {operations}")
        before = scim.get(url).json
        body = {"schemas": [PATCH_OP_SCHEMA], "Operations": operations}
        response = scim.patch(url, body)
        assert response.status_code in (200, 204, 400, 409), response.json
        after = scim.get(url).json
        check_invariants(after, first)
        if response.status_code >= 400:
            assert content(after) == content(before), response.json
            continue
        if len(operations) == 1:
            # Accepted again, or refused (a filter that no longer matches: noTarget).
            assert scim.patch(url, body).status_code in (200, 204, 400)
            assert content(scim.get(url).json) == content(after), "a replay changed the user"
        reads_back(scim, after)
