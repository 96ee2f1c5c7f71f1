"""The overview page: paid seats against the tier, the seat trend over the contract period,
recent and held changes, and the health of the organization's connections."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from app.console import bp, charts, queries_overview
from app.console.auth import console_user, reader
from app.db import read_only_unit
from app.models import Organization


@bp.get("/overview")
@reader
def overview() -> ResponseReturnValue:
    """What an org admin or reviewer looks at first: seats, trend, changes, health."""
    user = console_user()
    with read_only_unit() as session:
        organization = session.get(Organization, user.org_id)
        assert organization is not None  # the console session names a live organization
        data = queries_overview.overview(session, organization)
        trend = data.trend
        return render_template(
            "console/overview.html",
            data=data,
            gauge=charts.gauge(data.counts.paid, data.counts.tier),
            chart=charts.step_chart(trend.start, trend.end, trend.days, trend.paid, trend.tier),
            window_hours=int(queries_overview.ERROR_WINDOW.total_seconds() // 3600),
        )
