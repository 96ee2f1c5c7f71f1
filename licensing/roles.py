"""Role catalogue: the five built-in Blue roles plus an organization's custom roles."""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from licensing.errors import InvalidRoleError, UnknownRoleError

CUSTOM_KEY_PREFIX = "custom:"
MIN_CUSTOM_RANK = 1
MAX_CUSTOM_RANK = 999
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class Role:
    """A role a user holds in a Blue project; a higher rank grants more."""

    key: str
    name: str
    rank: int
    is_paid: bool
    is_custom: bool


PROJECT_ADMIN = Role("project_admin", "Project Administrator", 500, is_paid=True, is_custom=False)
TEAM_MEMBER = Role("team_member", "Team Member", 400, is_paid=True, is_custom=False)
CLIENT = Role("client", "Client", 300, is_paid=False, is_custom=False)
COMMENT_ONLY = Role("comment_only", "Comment Only", 200, is_paid=False, is_custom=False)
VIEW_ONLY = Role("view_only", "View Only", 100, is_paid=False, is_custom=False)
BUILT_IN_ROLES = (PROJECT_ADMIN, TEAM_MEMBER, CLIENT, COMMENT_ONLY, VIEW_ONLY)
_BUILT_IN_BY_RANK = {role.rank: role for role in BUILT_IN_ROLES}


@dataclass(frozen=True, slots=True)
class CustomRole:
    """An organization's own role; the admin places it among the built-ins by rank."""

    slug: str
    name: str
    rank: int
    description: str = ""
    permissions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _SLUG.fullmatch(self.slug):
            raise InvalidRoleError(
                f"custom role slug {self.slug!r} must be lowercase letters and digits, "
                "separated by single hyphens"
            )
        if not self.name.strip():
            raise InvalidRoleError(f"custom role {self.slug!r} needs a name")
        if not MIN_CUSTOM_RANK <= self.rank <= MAX_CUSTOM_RANK:
            raise InvalidRoleError(
                f"custom role rank {self.rank} is out of range: "
                f"choose {MIN_CUSTOM_RANK}..{MAX_CUSTOM_RANK}"
            )
        # An equal rank would make "highest rank wins" undecidable against a built-in role.
        if (built_in := _BUILT_IN_BY_RANK.get(self.rank)) is not None:
            raise InvalidRoleError(
                f"custom role rank {self.rank} is the rank of the built-in role "
                f"{built_in.name!r}: choose a rank above or below it"
            )

    @property
    def key(self) -> str:
        """The catalogue key, `custom:<slug>`."""
        return CUSTOM_KEY_PREFIX + self.slug

    def to_role(self) -> Role:
        """The catalogue entry for this role; custom roles always take a paid seat."""
        return Role(self.key, self.name, self.rank, is_paid=True, is_custom=True)


class RoleCatalogue:
    """Every role of one organization, by key or by case-insensitive name; immutable."""

    __slots__ = ("_by_key", "_by_name", "_roles")

    def __init__(self, custom_roles: Iterable[CustomRole] = ()) -> None:
        by_key: dict[str, Role] = {}
        by_name: dict[str, Role] = {}
        for role in (*BUILT_IN_ROLES, *(custom.to_role() for custom in custom_roles)):
            folded = role.name.casefold()
            if role.key in by_key:
                raise InvalidRoleError(f"role key {role.key!r} is defined twice")
            # Admins pick roles by name in the console and CSV imports, so names must be unique.
            if folded in by_name:
                raise InvalidRoleError(
                    f"role name {role.name!r} is already used by {by_name[folded].key!r}"
                )
            by_key[role.key] = role
            by_name[folded] = role
        self._by_key = by_key
        self._by_name = by_name
        self._roles = tuple(sorted(by_key.values(), key=lambda role: (-role.rank, role.key)))

    @property
    def roles(self) -> tuple[Role, ...]:
        """All roles, highest rank first."""
        return self._roles

    def __iter__(self) -> Iterator[Role]:
        return iter(self._roles)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def find(self, key: str) -> Role | None:
        """The role with this key, or None."""
        return self._by_key.get(key)

    def get(self, key: str) -> Role:
        """The role with this key; raises UnknownRoleError."""
        role = self._by_key.get(key)
        if role is None:
            raise UnknownRoleError(f"unknown role {key!r}")
        return role

    def by_name(self, name: str) -> Role:
        """The role with this name, ignoring case; raises UnknownRoleError."""
        role = self._by_name.get(name.strip().casefold())
        if role is None:
            raise UnknownRoleError(f"no role is named {name!r}")
        return role

    def best_role(self, keys: Iterable[str]) -> Role | None:
        """The highest-ranked role among these keys (ties: lowest key), or None if empty."""
        roles = [self.get(key) for key in keys]
        return min(roles, key=lambda role: (-role.rank, role.key), default=None)

    def best_free_role(self, keys: Iterable[str]) -> Role | None:
        """The highest-ranked free role among these keys, or None if none is free."""
        return self.best_role(key for key in keys if not self.get(key).is_paid)
