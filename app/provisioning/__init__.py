"""The provisioning core: the one door through which users, groups, memberships, role
assignments, seats and audit events change. No Flask, no commits: the caller's unit of work
(`app.db.unit_of_work`) is the only transaction boundary."""

from app.provisioning.service import (
    MULTI_VALUED,
    SYSTEM,
    USER_STRING_COLUMNS,
    Actor,
    ContractSpec,
    GroupSpec,
    LoginClaims,
    MemberChange,
    ProvisioningService,
    RuleSpec,
    UserSpec,
    UserState,
)

__all__ = [
    "MULTI_VALUED",
    "SYSTEM",
    "USER_STRING_COLUMNS",
    "Actor",
    "ContractSpec",
    "GroupSpec",
    "LoginClaims",
    "MemberChange",
    "ProvisioningService",
    "RuleSpec",
    "UserSpec",
    "UserState",
]
