"""Mapping rules: which IdP groups give which role in which Blue project."""

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from licensing.errors import InvalidValueError
from licensing.roles import Role, RoleCatalogue

ALL_PROJECTS = "*"


class GroupMatch(StrEnum):
    """Which group attribute a rule compares against its value."""

    ID = "id"
    EXTERNAL_ID = "externalId"
    DISPLAY_NAME = "displayName"


@dataclass(frozen=True, slots=True)
class GroupRef:
    """The identifying attributes of a group the user belongs to."""

    group_id: str
    external_id: str | None
    display_name: str


@dataclass(frozen=True, slots=True)
class MappingRule:
    """Members of the matching group get `role_key` in `project` (or `*`, every project).

    A displayName or externalId rule is bound to the group it first matched (`bound_group_id`,
    and that group's externalId when the IdP sent one): from then on it matches that group
    alone, whatever its name, so an IdP rename changes nothing but the label. Its group deleted,
    a bound rule matches nothing, not a new group that takes the same name. `match: id` rules
    name their group already and are never bound.
    """

    rule_id: str
    match: GroupMatch
    group_value: str
    role_key: str
    project: str
    priority: int = 0
    bound_group_id: str | None = None
    bound_external_id: str | None = None

    def __post_init__(self) -> None:
        for field_name in ("rule_id", "group_value", "role_key", "project"):
            if not getattr(self, field_name):
                raise InvalidValueError(f"mapping rule {self.rule_id!r} needs a {field_name}")
        if self.match is GroupMatch.ID and self.bound_group_id is not None:
            raise InvalidValueError(f"mapping rule {self.rule_id!r} matches by id: never bound")

    @property
    def is_bound(self) -> bool:
        """Whether the rule follows one group by identity (not its value)."""
        return self.bound_group_id is not None

    def matches(self, group: GroupRef) -> bool:
        """Whether this rule selects the group: its bound group only, once bound; else by
        value, displayName ignoring case, ids not."""
        if self.match is GroupMatch.ID:
            return group.group_id == self.group_value
        if self.bound_group_id is not None:
            return group.group_id == self.bound_group_id
        return self.matches_value(group)

    def matches_value(self, group: GroupRef) -> bool:
        """Whether the group has the name (or externalId, or id) the rule was written with."""
        if self.match is GroupMatch.ID:
            return group.group_id == self.group_value
        if self.match is GroupMatch.EXTERNAL_ID:
            return group.external_id == self.group_value
        # RFC 7643 §4.2 declares Group.displayName caseExact=false; id and externalId are exact.
        # lower(), not casefold(), to agree with the lower()-ed group_key the database indexes.
        return group.display_name.lower() == self.group_value.lower()

    def binds_to(self, group: GroupRef, bound_group_exists: bool = True) -> bool:
        """Whether the rule should bind to this group now that it is there: an unbound rule
        to the group its value names; a rule whose group was deleted to a group the IdP
        re-created with the same externalId (the IdP's own identity for it), never to one
        that only shares the name."""
        if self.match is GroupMatch.ID or group.group_id == self.bound_group_id:
            return False
        if self.bound_group_id is None:
            return self.matches_value(group)
        return (
            not bound_group_exists
            and self.bound_external_id is not None
            and group.external_id == self.bound_external_id
        )


@dataclass(frozen=True, slots=True, order=True)
class Source:
    """One matched rule and group that produced an assignment."""

    rule_id: str
    group_id: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """The effective role in one project; empty `sources` means the default role."""

    project: str
    role_key: str
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class _Match:
    rule: MappingRule
    group: GroupRef
    role: Role


def _find_matches(
    groups: Iterable[GroupRef], rules: Iterable[MappingRule], catalogue: RoleCatalogue
) -> list[_Match]:
    groups = tuple(groups)
    # Roles are looked up only when a rule matches (the default role only when it is used), so
    # one stale reference to a deleted custom role breaks only the users it concerns.
    return [
        _Match(rule, group, catalogue.get(rule.role_key))
        for rule in rules
        for group in groups
        if rule.matches(group)
    ]


def _resolve(project: str, candidates: Sequence[_Match]) -> Assignment:
    # Highest rank wins; equal ranks (custom roles) go to priority, then rule_id for determinism.
    winner = min(candidates, key=lambda m: (-m.role.rank, -m.rule.priority, m.rule.rule_id))
    sources = {
        Source(m.rule.rule_id, m.group.group_id)
        for m in candidates
        if m.role.key == winner.role.key
    }
    return Assignment(project, winner.role.key, tuple(sorted(sources)))


def _resolve_projects(
    projects: Collection[str], matches: Sequence[_Match]
) -> dict[str, Assignment]:
    everywhere = [m for m in matches if m.rule.project == ALL_PROJECTS]
    resolved: dict[str, Assignment] = {}
    for project in sorted(projects):
        candidates = [m for m in matches if m.rule.project == project]
        if project != ALL_PROJECTS:
            candidates += everywhere
        if candidates:
            resolved[project] = _resolve(project, candidates)
    return resolved


def effective_roles(
    groups: Iterable[GroupRef],
    rules: Iterable[MappingRule],
    catalogue: RoleCatalogue,
    default_role_key: str | None = None,
) -> dict[str, Assignment]:
    """Effective role per project key; `*` covers every project without its own entry."""
    matches = _find_matches(groups, rules, catalogue)
    if matches:
        return _resolve_projects({m.rule.project for m in matches}, matches)
    if default_role_key is None:
        return {}
    default_role = catalogue.get(default_role_key)
    return {ALL_PROJECTS: Assignment(ALL_PROJECTS, default_role.key, ())}


def free_fallback_roles(
    groups: Iterable[GroupRef],
    rules: Iterable[MappingRule],
    catalogue: RoleCatalogue,
    default_role_key: str | None = None,
) -> dict[str, Assignment]:
    """Best free role per project of `effective_roles`, else a free default; for `hold`."""
    matches = _find_matches(groups, rules, catalogue)
    projects = {m.rule.project for m in matches}
    if not projects and default_role_key is not None:
        projects = {ALL_PROJECTS}
    resolved = _resolve_projects(projects, [m for m in matches if not m.role.is_paid])
    if (missing := projects - resolved.keys()) and default_role_key is not None:
        default_role = catalogue.get(default_role_key)
        if not default_role.is_paid:
            resolved.update(
                {project: Assignment(project, default_role.key, ()) for project in missing}
            )
    return dict(sorted(resolved.items()))


class RoleResolver:
    """`effective_roles` and `free_fallback_roles` for one set of rules, catalogue and default
    role, remembered per combination of matched groups.

    Groups no rule matches cannot change either answer, so users who share their matched groups
    share it: a rule on a 50,000-member group resolves the roles once, not 50,000 times. The
    answers are shared between users; callers must not change them.
    """

    def __init__(
        self,
        rules: Sequence[MappingRule],
        catalogue: RoleCatalogue,
        default_role_key: str | None = None,
    ) -> None:
        self.rules = rules
        self.catalogue = catalogue
        self.default_role_key = default_role_key
        self._is_mapped: dict[GroupRef, bool] = {}
        self._effective: dict[tuple[GroupRef, ...], dict[str, Assignment]] = {}
        self._fallback: dict[tuple[GroupRef, ...], dict[str, Assignment]] = {}

    def is_for(
        self,
        rules: Sequence[MappingRule],
        catalogue: RoleCatalogue,
        default_role_key: str | None,
    ) -> bool:
        """Whether this resolver was built from these very objects (the caller's caches)."""
        return (
            rules is self.rules
            and catalogue is self.catalogue
            and default_role_key == self.default_role_key
        )

    def _mapped(self, groups: Iterable[GroupRef]) -> tuple[GroupRef, ...]:
        mapped: list[GroupRef] = []
        for group in groups:
            is_mapped = self._is_mapped.get(group)
            if is_mapped is None:
                is_mapped = any(rule.matches(group) for rule in self.rules)
                self._is_mapped[group] = is_mapped
            if is_mapped:
                mapped.append(group)
        return tuple(sorted(mapped, key=lambda group: group.group_id))

    def effective_roles(self, groups: Iterable[GroupRef]) -> dict[str, Assignment]:
        return self._remembered(self._effective, effective_roles, groups)

    def free_fallback_roles(self, groups: Iterable[GroupRef]) -> dict[str, Assignment]:
        return self._remembered(self._fallback, free_fallback_roles, groups)

    def _remembered(
        self,
        answers: dict[tuple[GroupRef, ...], dict[str, Assignment]],
        resolve: Callable[
            [Iterable[GroupRef], Iterable[MappingRule], RoleCatalogue, str | None],
            dict[str, Assignment],
        ],
        groups: Iterable[GroupRef],
    ) -> dict[str, Assignment]:
        key = self._mapped(groups)
        found = answers.get(key)
        if found is None:
            found = answers[key] = resolve(key, self.rules, self.catalogue, self.default_role_key)
        return found
