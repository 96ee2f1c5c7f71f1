"""The renewal report: paid-seat use against the tier, month by month over the contract, and
a forecast of the paid seats at renewal."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Organization, SeatKind, User
from app.reporting.seats import ledger, seat_moves, seat_totals, seats_before

RENEWAL_COLUMNS = ("month", "peak_paid", "end_paid", "end_free", "tier", "utilisation")


@dataclass
class _Use:
    """Paid-seat use by month: the rows, and the peak and month-end paid seats of each."""

    series: list[dict[str, Any]] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    end_paid: list[int] = field(default_factory=list)
    paid: int = 0  # paid seats at the end of the last month


def renewal_report(
    session: Session, organization: Organization, reclaim_days: int = 30
) -> dict[str, Any]:
    """Paid-seat use against the tier by month over the contract, with a renewal forecast."""
    today = datetime.now(UTC).date()
    start = organization.contract_starts_on or date(today.year - 1, today.month, 1)
    end = organization.contract_ends_on or _one_year_after(start)
    months = _month_starts(start, min(today, end))
    use = _monthly_use(session, organization, start, months)
    totals = seat_totals(session, organization.id)
    return {
        "tier": organization.paid_seat_tier,
        "policy": organization.overage_policy,
        "contract_start": start.isoformat(),
        "contract_end": end.isoformat(),
        "months": use.series,
        "peak_paid": max(use.peaks, default=use.paid),
        "current": {"paid": totals.paid, "free": totals.free, "pending": totals.pending},
        "reclaim_candidates": _reclaim_candidates(session, organization, reclaim_days),
        "reclaim_after_days": reclaim_days,
        "forecast_paid_at_renewal": _forecast(use.end_paid, months, end),
    }


def _monthly_use(
    session: Session, organization: Organization, start: date, months: Sequence[date]
) -> _Use:
    """Each month's peak and month-end seats, replaying the seat ledger from `start`."""
    start_at = datetime.combine(start, time.min, UTC)
    paid, free = seats_before(session, organization.id, start_at)
    entries = ledger(session, organization.id, start_at)
    entry = next(entries, None)
    use = _Use()
    tier = organization.paid_seat_tier
    for month in months:
        following = datetime.combine(_next_month(month), time.min, UTC)
        peak = paid
        while entry is not None and entry.at < following:
            paid_move, free_move = seat_moves(entry.from_seat, entry.to_seat)
            paid, free = paid + paid_move, free + free_move
            peak = max(peak, paid)
            entry = next(entries, None)
        use.peaks.append(peak)
        use.end_paid.append(paid)
        use.series.append(
            {
                "month": month.isoformat()[:7],
                "peak_paid": peak,
                "end_paid": paid,
                "end_free": free,
                "tier": tier,
                "utilisation": round(peak / tier, 3) if tier else None,
            }
        )
    use.paid = paid
    return use


def _reclaim_candidates(session: Session, organization: Organization, days: int) -> int:
    """Users holding a paid seat who have not logged in for `days` days (or ever)."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    found = session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.org_id == organization.id,
            User.seat == SeatKind.PAID,
            (User.last_login_at.is_(None)) | (User.last_login_at < cutoff),
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
