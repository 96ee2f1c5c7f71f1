"""Access and seats: who gets which role in which project, and which seat, recomputed for
exactly the users a change affects (plan → guard → decide → write), dry runs and drift."""

from app.provisioning.access.guard import Verdict, confirmed_reason, hold, staged
from app.provisioning.access.plan import AccessPlan, UserState, plan_access, users_matching
from app.provisioning.access.recomputation import (
    promote_pending,
    recompute,
    recompute_unless_held,
)
from app.provisioning.access.recorder import AccessRecorder
from app.provisioning.access.review import drift

__all__ = [
    "AccessPlan",
    "AccessRecorder",
    "UserState",
    "Verdict",
    "confirmed_reason",
    "drift",
    "hold",
    "plan_access",
    "promote_pending",
    "recompute",
    "recompute_unless_held",
    "staged",
    "users_matching",
]
