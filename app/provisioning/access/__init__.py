"""Access and seats: who gets which role in which project, and which seat, recomputed for
exactly the users a change affects (plan → guard → decide → write), dry runs and drift."""

from app.provisioning.access.plan import AccessPlan, UserState, plan_access, users_matching
from app.provisioning.access.recomputation import promote_pending, recompute
from app.provisioning.access.recorder import AccessRecorder
from app.provisioning.access.review import drift

__all__ = [
    "AccessPlan",
    "AccessRecorder",
    "UserState",
    "drift",
    "plan_access",
    "promote_pending",
    "recompute",
    "users_matching",
]
