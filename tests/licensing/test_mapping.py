import pytest

from licensing import (
    Assignment,
    CustomRole,
    GroupMatch,
    GroupRef,
    InvalidValueError,
    MappingRule,
    RoleCatalogue,
    RoleResolver,
    Source,
    UnknownRoleError,
    effective_roles,
    free_fallback_roles,
)

ENG = GroupRef("g-eng", "ext-eng", "Engineering")
OPS = GroupRef("g-ops", None, "Ops")
OPS_UPPER = GroupRef("g-ops-2", None, "OPS")
SALES = GroupRef("g-sales", "ext-sales", "Sales")
CATALOGUE = RoleCatalogue(
    [CustomRole("lead", "Lead", 450), CustomRole("reviewer", "Reviewer", 450)]
)


def rule(
    rule_id: str, group: GroupRef, role_key: str, project: str = "*", priority: int = 0
) -> MappingRule:
    return MappingRule(rule_id, GroupMatch.ID, group.group_id, role_key, project, priority)


def roles_of(assignments: dict[str, Assignment]) -> dict[str, str]:
    return {project: assignment.role_key for project, assignment in assignments.items()}


@pytest.mark.parametrize(
    ("match", "value", "is_match"),
    [
        (GroupMatch.DISPLAY_NAME, "Engineering", True),
        (GroupMatch.DISPLAY_NAME, "ENGINEERING", True),
        (GroupMatch.DISPLAY_NAME, "engineer", False),
        (GroupMatch.ID, "g-eng", True),
        (GroupMatch.ID, "G-ENG", False),
        (GroupMatch.EXTERNAL_ID, "ext-eng", True),
        (GroupMatch.EXTERNAL_ID, "EXT-ENG", False),
        (GroupMatch.EXTERNAL_ID, "Engineering", False),
    ],
)
def test_display_name_matches_ignoring_case_but_ids_match_exactly(
    match: GroupMatch, value: str, is_match: bool
) -> None:
    assert MappingRule("r1", match, value, "client", "*").matches(ENG) is is_match


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([rule("r1", ENG, "team_member")], {"*": "team_member"}),
        ([rule("r1", ENG, "comment_only", "apollo")], {"apollo": "comment_only"}),
        # A `*` rule also competes in every project that has its own rules...
        (
            [rule("r1", ENG, "team_member"), rule("r2", OPS, "client", "apollo")],
            {"*": "team_member", "apollo": "team_member"},
        ),
        # ...but project rules never raise the `*` entry.
        (
            [rule("r1", ENG, "client"), rule("r2", OPS, "project_admin", "apollo")],
            {"*": "client", "apollo": "project_admin"},
        ),
        (
            [rule("r1", ENG, "custom:lead", "apollo"), rule("r2", OPS, "team_member", "apollo")],
            {"apollo": "custom:lead"},
        ),
        (
            [rule("r1", ENG, "custom:lead", "apollo", 99), rule("r2", OPS, "project_admin")],
            {"*": "project_admin", "apollo": "project_admin"},
        ),
        ([rule("r1", SALES, "project_admin")], {}),
    ],
)
def test_highest_rank_wins_per_project(rules: list[MappingRule], expected: dict[str, str]) -> None:
    assert roles_of(effective_roles([ENG, OPS], rules, CATALOGUE)) == expected


@pytest.mark.parametrize(
    ("lead_rule", "reviewer_rule", "winner"),
    [
        (("r1", 0), ("r2", 5), "custom:reviewer"),
        (("r1", 5), ("r2", 0), "custom:lead"),
        (("r1", 0), ("r2", 0), "custom:lead"),
        (("r2", 0), ("r1", 0), "custom:reviewer"),
    ],
)
def test_rank_ties_go_to_priority_then_lowest_rule_id(
    lead_rule: tuple[str, int], reviewer_rule: tuple[str, int], winner: str
) -> None:
    rules = [
        rule(lead_rule[0], ENG, "custom:lead", "apollo", lead_rule[1]),
        rule(reviewer_rule[0], OPS, "custom:reviewer", priority=reviewer_rule[1]),
    ]
    assert effective_roles([ENG, OPS], rules, CATALOGUE)["apollo"].role_key == winner


@pytest.mark.parametrize(
    ("rules", "project", "sources"),
    [
        (
            [
                rule("r1", ENG, "team_member", "apollo"),
                rule("r2", OPS, "team_member"),
                rule("r3", SALES, "client", "apollo"),
            ],
            "apollo",
            (Source("r1", "g-eng"), Source("r2", "g-ops")),
        ),
        (
            [MappingRule("r1", GroupMatch.DISPLAY_NAME, "ops", "client", "*")],
            "*",
            (Source("r1", "g-ops"), Source("r1", "g-ops-2")),
        ),
    ],
)
def test_sources_list_every_rule_and_group_granting_the_winning_role(
    rules: list[MappingRule], project: str, sources: tuple[Source, ...]
) -> None:
    groups = [ENG, OPS, OPS_UPPER, SALES]
    assert effective_roles(groups, rules, CATALOGUE)[project].sources == sources


@pytest.mark.parametrize(
    ("rules", "default_role_key", "expected"),
    [
        ([], "client", {"*": Assignment("*", "client", ())}),
        ([rule("r1", SALES, "team_member")], "view_only", {"*": Assignment("*", "view_only", ())}),
        ([], None, {}),
        (
            [rule("r1", ENG, "comment_only", "apollo")],
            "client",
            {"apollo": Assignment("apollo", "comment_only", (Source("r1", "g-eng"),))},
        ),
    ],
)
def test_default_role_applies_only_when_no_rule_matches(
    rules: list[MappingRule], default_role_key: str | None, expected: dict[str, Assignment]
) -> None:
    assert effective_roles([ENG], rules, CATALOGUE, default_role_key) == expected


@pytest.mark.parametrize(
    ("rules", "default_role_key", "expected"),
    [
        (
            [
                rule("r1", ENG, "project_admin", "apollo"),
                rule("r2", ENG, "client"),
                rule("r3", OPS, "comment_only", "apollo"),
            ],
            "view_only",
            {"*": "client", "apollo": "client"},
        ),
        ([rule("r1", ENG, "team_member", "apollo")], "view_only", {"apollo": "view_only"}),
        ([rule("r1", ENG, "team_member", "apollo")], "team_member", {}),
        ([], "client", {"*": "client"}),
        ([], "team_member", {}),
    ],
)
def test_free_fallback_is_best_matched_free_role_then_free_default(
    rules: list[MappingRule], default_role_key: str, expected: dict[str, str]
) -> None:
    assert roles_of(free_fallback_roles([ENG, OPS], rules, CATALOGUE, default_role_key)) == expected


def test_unknown_role_raises_only_for_rules_that_match() -> None:
    stale = rule("r9", SALES, "custom:deleted")
    assert roles_of(effective_roles([ENG], [stale, rule("r1", ENG, "client")], CATALOGUE)) == {
        "*": "client"
    }
    with pytest.raises(UnknownRoleError, match="custom:deleted"):
        effective_roles([SALES], [stale], CATALOGUE)
    with pytest.raises(UnknownRoleError, match="owner"):
        effective_roles([], [], CATALOGUE, "owner")


RESOLVER_RULES = [
    rule("r1", ENG, "team_member"),
    rule("r2", OPS, "project_admin", "apollo"),
    MappingRule("r3", GroupMatch.DISPLAY_NAME, "ops", "comment_only", "*"),
]


@pytest.mark.parametrize(
    "groups",
    [
        [],
        [ENG],
        [SALES],
        [ENG, SALES],
        [SALES, ENG],
        [OPS],
        [OPS_UPPER, SALES],
        [ENG, OPS, OPS_UPPER, SALES],
    ],
)
@pytest.mark.parametrize("default_role_key", [None, "view_only", "team_member"])
def test_resolver_answers_as_the_functions_do(
    groups: list[GroupRef], default_role_key: str | None
) -> None:
    resolver = RoleResolver(RESOLVER_RULES, CATALOGUE, default_role_key)
    for _ in range(2):  # the remembered answer is the same answer
        assert resolver.effective_roles(groups) == effective_roles(
            groups, RESOLVER_RULES, CATALOGUE, default_role_key
        )
        assert resolver.free_fallback_roles(groups) == free_fallback_roles(
            groups, RESOLVER_RULES, CATALOGUE, default_role_key
        )


def test_resolver_resolves_once_per_combination_of_mapped_groups() -> None:
    resolver = RoleResolver(RESOLVER_RULES, CATALOGUE)
    # Unmapped groups and their order do not matter: one answer object for all three users.
    first = resolver.effective_roles([ENG, SALES])
    assert resolver.effective_roles([SALES, ENG]) is first
    assert resolver.effective_roles([ENG]) is first
    assert resolver.effective_roles([ENG, OPS]) is not first


def test_resolver_knows_which_rules_catalogue_and_default_it_was_built_from() -> None:
    resolver = RoleResolver(RESOLVER_RULES, CATALOGUE, "client")
    assert resolver.is_for(RESOLVER_RULES, CATALOGUE, "client")
    assert not resolver.is_for(list(RESOLVER_RULES), CATALOGUE, "client")
    assert not resolver.is_for(RESOLVER_RULES, RoleCatalogue([]), "client")
    assert not resolver.is_for(RESOLVER_RULES, CATALOGUE, None)


RENAMED_ENG = GroupRef("g-eng", "ext-eng", "Platform")
NEW_ENG = GroupRef("g-eng-2", "ext-eng-2", "Engineering")
RECREATED_ENG = GroupRef("g-eng-3", "ext-eng", "Engineering (all)")


def bound(match: GroupMatch, value: str) -> MappingRule:
    """A rule bound to ENG (its id here and its externalId)."""
    return MappingRule("r", match, value, "client", "*", 0, "g-eng", "ext-eng")


@pytest.mark.parametrize(
    ("rule_", "group", "is_match"),
    [
        # Bound: the group itself, whatever it is called; never another group of that name.
        (bound(GroupMatch.DISPLAY_NAME, "Engineering"), ENG, True),
        (bound(GroupMatch.DISPLAY_NAME, "Engineering"), RENAMED_ENG, True),
        (bound(GroupMatch.DISPLAY_NAME, "Engineering"), NEW_ENG, False),
        (bound(GroupMatch.EXTERNAL_ID, "ext-eng"), RENAMED_ENG, True),
        (bound(GroupMatch.EXTERNAL_ID, "ext-eng"), RECREATED_ENG, False),
        # Unbound: by value, as written.
        (MappingRule("r", GroupMatch.DISPLAY_NAME, "engineering", "client", "*"), NEW_ENG, True),
        (
            MappingRule("r", GroupMatch.DISPLAY_NAME, "engineering", "client", "*"),
            RENAMED_ENG,
            False,
        ),
    ],
)
def test_a_bound_rule_matches_its_group_by_identity(
    rule_: MappingRule, group: GroupRef, is_match: bool
) -> None:
    assert rule_.matches(group) is is_match


@pytest.mark.parametrize(
    ("rule_", "group", "bound_group_exists", "binds"),
    [
        # An unbound rule binds to the group its value names.
        (MappingRule("r", GroupMatch.DISPLAY_NAME, "ENGINEERING", "client", "*"), ENG, True, True),
        (MappingRule("r", GroupMatch.EXTERNAL_ID, "ext-eng", "client", "*"), ENG, True, True),
        (MappingRule("r", GroupMatch.DISPLAY_NAME, "Sales", "client", "*"), ENG, True, False),
        # A bound rule stays with its group: a new group of the same name is not it...
        (bound(GroupMatch.DISPLAY_NAME, "Engineering"), NEW_ENG, False, False),
        # ...but the IdP's own identity (externalId) re-created is, once the old one is gone.
        (bound(GroupMatch.DISPLAY_NAME, "Engineering"), RECREATED_ENG, False, True),
        (bound(GroupMatch.DISPLAY_NAME, "Engineering"), RECREATED_ENG, True, False),
        (bound(GroupMatch.DISPLAY_NAME, "Engineering"), ENG, True, False),
        # id rules name their group already.
        (MappingRule("r", GroupMatch.ID, "g-eng", "client", "*"), ENG, True, False),
    ],
)
def test_which_groups_a_rule_binds_to(
    rule_: MappingRule, group: GroupRef, bound_group_exists: bool, binds: bool
) -> None:
    assert rule_.binds_to(group, bound_group_exists) is binds


def test_an_id_rule_cannot_be_bound() -> None:
    with pytest.raises(InvalidValueError):
        MappingRule("r", GroupMatch.ID, "g-eng", "client", "*", 0, "g-eng")


def test_a_renamed_bound_group_resolves_as_before() -> None:
    rules = [bound(GroupMatch.DISPLAY_NAME, "Engineering")]
    before = effective_roles([ENG], rules, CATALOGUE)
    assert effective_roles([RENAMED_ENG], rules, CATALOGUE) == before
    assert effective_roles([NEW_ENG], rules, CATALOGUE) == {}
