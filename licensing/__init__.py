"""Pure licensing rules: roles, mapping rules, seats, contract policy, dry runs, mass-grant guard.

Standard library only; frozen dataclasses in, decisions out. No I/O.
"""

from licensing.contract import (
    BillingTerms,
    Contract,
    OveragePolicy,
    PendingUser,
    SeatDecision,
    decide_seat,
    promotion_order,
)
from licensing.dryrun import (
    ChangeKind,
    DryRunResult,
    RoleChange,
    SeatTotals,
    UserAccess,
    UserChange,
    diff_access,
    diff_user,
    diff_users,
)
from licensing.errors import InvalidRoleError, InvalidValueError, LicensingError, UnknownRoleError
from licensing.guard import (
    ChangeSplit,
    GuardDecision,
    GuardThresholds,
    evaluate_guard,
    split_change,
)
from licensing.mapping import (
    ALL_PROJECTS,
    Assignment,
    GroupMatch,
    GroupRef,
    MappingRule,
    Source,
    effective_roles,
    free_fallback_roles,
)
from licensing.roles import (
    BUILT_IN_ROLES,
    CLIENT,
    COMMENT_ONLY,
    CUSTOM_KEY_PREFIX,
    PROJECT_ADMIN,
    TEAM_MEMBER,
    VIEW_ONLY,
    CustomRole,
    Role,
    RoleCatalogue,
)
from licensing.seats import Seat, classify_seat

__all__ = [
    "ALL_PROJECTS",
    "BUILT_IN_ROLES",
    "CLIENT",
    "COMMENT_ONLY",
    "CUSTOM_KEY_PREFIX",
    "PROJECT_ADMIN",
    "TEAM_MEMBER",
    "VIEW_ONLY",
    "Assignment",
    "BillingTerms",
    "ChangeKind",
    "ChangeSplit",
    "Contract",
    "CustomRole",
    "DryRunResult",
    "GroupMatch",
    "GroupRef",
    "GuardDecision",
    "GuardThresholds",
    "InvalidRoleError",
    "InvalidValueError",
    "LicensingError",
    "MappingRule",
    "OveragePolicy",
    "PendingUser",
    "Role",
    "RoleCatalogue",
    "RoleChange",
    "Seat",
    "SeatDecision",
    "SeatTotals",
    "Source",
    "UnknownRoleError",
    "UserAccess",
    "UserChange",
    "classify_seat",
    "decide_seat",
    "diff_access",
    "diff_user",
    "diff_users",
    "effective_roles",
    "evaluate_guard",
    "free_fallback_roles",
    "promotion_order",
    "split_change",
]
