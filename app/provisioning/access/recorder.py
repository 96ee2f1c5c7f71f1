"""What a dry run records of a recompute: each affected user's access before and after."""

from __future__ import annotations

import licensing
from app.provisioning.access.plan import AccessPlan


class AccessRecorder:
    """Given to a dry run's scope: recompute reports every user it decides for (as really
    decided: without the grants the guard holds), and the guard reports what it holds."""

    def __init__(self) -> None:
        self.before: dict[str, licensing.UserAccess] = {}
        self.after: dict[str, licensing.UserAccess] = {}
        self.holds: list[licensing.HeldGrants] = []

    def held(self, grants: licensing.HeldGrants) -> None:
        """Note grants the guard holds: shown as held, not counted as applied."""
        self.holds.append(grants)

    def decided(self, plan: AccessPlan, decision: licensing.SeatDecision) -> None:
        """Note a user's access before the change (the first time) and as now decided."""
        user_id = str(plan.user.id)
        self.before.setdefault(user_id, plan.access_before())
        self.after[user_id] = licensing.UserAccess(
            user_id,
            plan.is_active,
            {p: a.role_key for p, a in decision.assignments.items()},
            decision.seat,
            decision.is_pending,
        )

    def result(self, totals: licensing.SeatTotals) -> licensing.DryRunResult:
        """Who would change, the seat totals before and after, and what would be held."""
        return licensing.diff_access(self.before, self.after, totals, self.holds)
