"""The provisioning core: the one door through which users, groups, memberships, role
assignments, seats and audit events change. No Flask, no commits: the caller's unit of work
(`app.db.unit_of_work`) is the only transaction boundary.

One module per capability behind the `ProvisioningService` facade, sharing a `Scope`:

- `specs`: the input types;
- `scope`: session, organization, actor, caches, scoped lookups, version checks, locks (and
  the lock order);
- `events`: every audit record the core writes;
- `directory/users`, `directory/groups`: the directory as the IdP pushes it;
- `access/`: recompute (plan → guard → decide → write), the mass-grant guard, seat writes and
  promotion, dry run (`AccessRecorder`) and drift;
- `login`: SSO login and just-in-time provisioning;
- `connections`: IdP connections, SSO options, verified domains;
- `catalogue`: projects and custom roles; `rules`: mapping rules and the default role;
- `contract`: the contract and guard thresholds; `held`: confirm or discard held changes;
- `organizations`: new organizations, their tokens issued and revoked; `sessions`: SSO
  sessions opened and ended; `keys`: the hand-off's signing keys added and retired.
"""

from app.audit import Actor
from app.provisioning.organizations import (
    OPERATOR,
    create_organization,
    create_token,
    revoke_token,
)
from app.provisioning.service import SYSTEM, ProvisioningService
from app.provisioning.specs import (
    MULTI_VALUED,
    USER_STRING_COLUMNS,
    ContractSpec,
    GroupSpec,
    LoginClaims,
    MemberChange,
    RuleChanges,
    RuleSpec,
    UserSpec,
)

__all__ = [
    "MULTI_VALUED",
    "OPERATOR",
    "SYSTEM",
    "USER_STRING_COLUMNS",
    "Actor",
    "ContractSpec",
    "GroupSpec",
    "LoginClaims",
    "MemberChange",
    "ProvisioningService",
    "RuleChanges",
    "RuleSpec",
    "UserSpec",
    "create_organization",
    "create_token",
    "revoke_token",
]
