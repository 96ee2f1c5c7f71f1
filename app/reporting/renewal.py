"""The renewal report: paid-seat use against the tier, month by month over the contract, and
a forecast of the paid seats at renewal.

Each month is told by the contract of that month: the tier and policy shown are the version
in force at the month's end (for the current month, now); `overage` is the most paid seats
held above the tier in force at any moment of the month.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

import licensing
from app.db import utcnow
from app.models import Organization, SeatEvent, SeatKind, User
from app.reporting.contracts import contract_history, version_document
from app.reporting.seats import ledger, pending_before, seat_moves, seat_totals, seats_before

RENEWAL_COLUMNS = (
    "month",
    "peak_paid",
    "end_paid",
    "end_free",
    "tier",
    "utilisation",
    "policy",
    "overage",
    "end_pending",
)
DEFAULT_GRACE_DAYS = 30


@dataclass
class _Use:
    """Paid-seat use by month: the rows, and the peak and month-end paid seats of each."""

    series: list[dict[str, Any]] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    end_paid: list[int] = field(default_factory=list)
    paid: int = 0  # paid seats at the end of the last month


@dataclass
class _Replay:
    """The seat ledger and the contract versions replayed together, in time order."""

    entries: Iterator[Row[datetime, str, str]]
    versions: Iterator[tuple[datetime, licensing.Contract]]
    contract: licensing.Contract
    paid: int
    free: int
    entry: Row[datetime, str, str] | None = None
    version: tuple[datetime, licensing.Contract] | None = None

    def __post_init__(self) -> None:
        self.entry = next(self.entries, None)
        self.version = next(self.versions, None)

    @property
    def overage(self) -> int:
        """Paid seats above the tier in force right now."""
        return max(0, self.paid - self.contract.paid_seat_tier)

    def month(self, following: datetime) -> tuple[int, int]:
        """Replay up to `following` (exclusive); the month's peak paid seats and peak overage."""
        peak, overage = self.paid, self.overage
        while self.entry is not None and self.entry.at < following:
            self._versions_until(self.entry.at, inclusive=True)
            overage = max(overage, self.overage)
            paid_move, free_move = seat_moves(self.entry.from_seat, self.entry.to_seat)
            self.paid, self.free = self.paid + paid_move, self.free + free_move
            peak, overage = max(peak, self.paid), max(overage, self.overage)
            self.entry = next(self.entries, None)
        # The tier of the month is the version in force at its end.
        overage = max(overage, self._versions_until(following, inclusive=False))
        return peak, overage

    def _versions_until(self, instant: datetime, inclusive: bool) -> int:
        """Take the versions that take effect by `instant`; the most overage they leave."""
        overage = self.overage
        while self.version is not None and (
            self.version[0] < instant or (inclusive and self.version[0] == instant)
        ):
            self.contract = self.version[1]
            overage = max(overage, self.overage)
            self.version = next(self.versions, None)
        return overage


def renewal_report(
    session: Session,
    organization: Organization,
    reclaim_days: int = 30,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> dict[str, Any]:
    """Paid-seat use by month over the contract against the tier in force in each month, with
    overage and pending users, the seats now, reclaimable seats and a renewal forecast."""
    now = utcnow()
    today = now.date()
    start = organization.contract_starts_on or date(today.year - 1, today.month, 1)
    end = organization.contract_ends_on or _one_year_after(start)
    months = _month_starts(start, min(today, end))
    history = contract_history(session, organization)
    use = _monthly_use(session, organization, history, start, months)
    totals = seat_totals(session, organization.id)
    return {
        "tier": organization.paid_seat_tier,
        "policy": organization.overage_policy,
        "contract_start": start.isoformat(),
        "contract_end": end.isoformat(),
        "months": use.series,
        "peak_paid": max(use.peaks, default=use.paid),
        "current": {
            "paid": totals.paid,
            "free": totals.free,
            "pending": totals.pending,
            "none": totals.none,
        },
        "reclaim_candidates": _reclaim_candidates(
            session, organization, reclaim_days, grace_days, now
        ),
        "reclaim_after_days": reclaim_days,
        "reclaim_grace_days": grace_days,
        "forecast_paid_at_renewal": _forecast(use.end_paid, months, end),
        "contract_versions": [version_document(at, c) for at, c in history.versions],
    }


def _monthly_use(
    session: Session,
    organization: Organization,
    history: licensing.ContractHistory,
    start: date,
    months: Sequence[date],
) -> _Use:
    """Each month's seats at its peak and end, replaying the seat ledger from `start` with the
    contract versions: the tier and policy shown are those in force at the month's end."""
    start_at = datetime.combine(start, time.min, UTC)
    paid, free = seats_before(session, organization.id, start_at)
    replay = _Replay(
        ledger(session, organization.id, start_at),
        iter([(at, c) for at, c in history.versions if at > start_at]),
        history.at(start_at),
        paid,
        free,
    )
    ends = [datetime.combine(_next_month(month), time.min, UTC) for month in months]
    pending = pending_before(session, organization.id, ends)
    use = _Use()
    for index, month in enumerate(months):
        peak, overage = replay.month(ends[index])
        tier = replay.contract.paid_seat_tier
        use.peaks.append(peak)
        use.end_paid.append(replay.paid)
        use.series.append(
            {
                "month": month.isoformat()[:7],
                "peak_paid": peak,
                "end_paid": replay.paid,
                # Pending users are counted as pending, not also in the free seat they hold.
                "end_free": replay.free - pending.on_free_seat[index],
                "tier": tier,
                "utilisation": round(peak / tier, 3) if tier else None,
                "policy": replay.contract.policy.value,
                "overage": overage,
                "end_pending": pending.users[index],
            }
        )
    use.paid = replay.paid
    return use


def _reclaim_candidates(
    session: Session, organization: Organization, days: int, grace_days: int, now: datetime
) -> int:
    """Users holding a paid seat who have not logged in for `days` days (or ever), except those
    still in their grace period: provisioned, or given their paid seat, in the last
    `grace_days` days (a new hire, a returning user, a promoted pending user)."""
    cutoff = now - timedelta(days=days)
    grace_from = now - timedelta(days=grace_days)
    seated_lately = (
        select(SeatEvent.id)
        .where(
            SeatEvent.user_id == User.id,
            SeatEvent.to_seat == SeatKind.PAID,
            SeatEvent.at >= grace_from,
        )
        .exists()
    )
    found = session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.org_id == organization.id,
            User.seat == SeatKind.PAID,
            (User.last_login_at.is_(None)) | (User.last_login_at < cutoff),
            User.created_at < grace_from,
            ~seated_lately,
        )
    )
    return found or 0


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _month_starts(start: date, until: date) -> list[date]:
    months = []
    month = start.replace(day=1)
    while month <= until:
        months.append(month)
        month = _next_month(month)
    return months or [start.replace(day=1)]


def _forecast(values: Sequence[int], months: Sequence[date], renewal: date) -> int:
    """Least-squares line through the monthly paid seats, read at the renewal month."""
    if not values:
        return 0
    if len(values) == 1:
        return values[0]
    n = len(values)
    xs = range(n)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    first = months[0]
    target = (renewal.year - first.year) * 12 + renewal.month - first.month
    return max(0, round(mean_y + slope * (target - mean_x)))


def renewal_rows(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The renewal report's monthly series, as rows for CSV and JSON Lines."""
    yield from report["months"]
