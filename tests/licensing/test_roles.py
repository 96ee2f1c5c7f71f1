import pytest

from licensing import CustomRole, InvalidRoleError, Role, RoleCatalogue, UnknownRoleError

CATALOGUE = RoleCatalogue(
    [
        CustomRole("lead", "Lead", 450, "Leads a squad", ("task.assign", "task.close")),
        CustomRole("auditor", "Auditor", 150),
    ]
)


@pytest.mark.parametrize(
    ("key", "name", "rank", "is_paid"),
    [
        ("project_admin", "Project Administrator", 500, True),
        ("team_member", "Team Member", 400, True),
        ("client", "Client", 300, False),
        ("comment_only", "Comment Only", 200, False),
        ("view_only", "View Only", 100, False),
    ],
)
def test_built_in_roles_have_fixed_rank_and_seat_kind(
    key: str, name: str, rank: int, is_paid: bool
) -> None:
    assert RoleCatalogue().get(key) == Role(key, name, rank, is_paid, is_custom=False)


@pytest.mark.parametrize(
    ("rank", "message"),
    [
        (0, "out of range"),
        (-5, "out of range"),
        (1000, "out of range"),
        (500, "'Project Administrator'"),
        (300, "'Client'"),
        (100, "'View Only'"),
    ],
)
def test_custom_role_rank_is_in_range_and_not_a_built_in_rank(rank: int, message: str) -> None:
    with pytest.raises(InvalidRoleError, match=message):
        CustomRole("lead", "Lead", rank)


@pytest.mark.parametrize("rank", [1, 99, 450, 501, 999])
def test_custom_role_is_always_paid_at_its_admin_given_rank(rank: int) -> None:
    role = CustomRole("lead", "Lead", rank).to_role()
    assert role == Role("custom:lead", "Lead", rank, is_paid=True, is_custom=True)


@pytest.mark.parametrize("slug", ["", "Lead", "tech lead", "-lead", "lead--x", "custom:lead"])
def test_custom_role_slug_must_be_lowercase_with_single_hyphens(slug: str) -> None:
    with pytest.raises(InvalidRoleError, match="slug"):
        CustomRole(slug, "Lead", 450)


def test_custom_roles_sort_between_built_ins_by_rank() -> None:
    assert [role.key for role in CATALOGUE] == [
        "project_admin",
        "custom:lead",
        "team_member",
        "client",
        "comment_only",
        "custom:auditor",
        "view_only",
    ]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("project administrator", "project_admin"),
        ("  LEAD ", "custom:lead"),
        ("Auditor", "custom:auditor"),
    ],
)
def test_lookup_by_name_ignores_case(name: str, key: str) -> None:
    assert CATALOGUE.by_name(name).key == key


@pytest.mark.parametrize(("key", "name"), [("custom:owner", "Owner"), ("Client", "Clients")])
def test_unknown_key_or_name_raises(key: str, name: str) -> None:
    assert key not in CATALOGUE and CATALOGUE.find(key) is None
    with pytest.raises(UnknownRoleError, match=key):
        CATALOGUE.get(key)
    with pytest.raises(UnknownRoleError, match=name):
        CATALOGUE.by_name(name)


@pytest.mark.parametrize(
    ("custom_roles", "message"),
    [
        ([CustomRole("client-2", "CLIENT", 250)], "already used by 'client'"),
        ([CustomRole("a", "A", 250), CustomRole("b", "a", 260)], "already used by 'custom:a'"),
        ([CustomRole("a", "A", 250), CustomRole("a", "B", 260)], "defined twice"),
    ],
)
def test_catalogue_rejects_clashing_custom_roles(
    custom_roles: list[CustomRole], message: str
) -> None:
    with pytest.raises(InvalidRoleError, match=message):
        RoleCatalogue(custom_roles)


@pytest.mark.parametrize(
    ("keys", "best", "best_free"),
    [
        (["view_only", "client", "team_member"], "team_member", "client"),
        (["custom:lead", "project_admin"], "project_admin", None),
        (["custom:auditor", "view_only"], "custom:auditor", "view_only"),
        ([], None, None),
    ],
)
def test_best_role_and_best_free_role(
    keys: list[str], best: str | None, best_free: str | None
) -> None:
    best_role, best_free_role = CATALOGUE.best_role(keys), CATALOGUE.best_free_role(keys)
    assert (best_role and best_role.key, best_free_role and best_free_role.key) == (best, best_free)
