"""Reporting: read-only reports on access, seats and the audit trail, streamed row by row.

One module per report: `access` (as of now, or as of a past date through `replay`),
`changes`, `renewal` (by the contract of each month: `contracts` reads its versions), `drift`,
`seats`, `user_roles` (one user's access explained), and
`audit_trail` (the trail queried, paged and exported). `lookups` holds what they share and
`exports` writes any of them as CSV, JSON Lines or JSON in constant memory. Nothing here writes.
"""

from app.reporting.access import (
    ACCESS_COLUMNS,
    SEATS,
    STATUSES,
    AccessFilters,
    access_report,
)
from app.reporting.audit_trail import (
    AUDIT_COLUMNS,
    MEMBERSHIP_ACTIONS,
    AuditFilters,
    audit_events,
    audit_page,
    audit_query,
    decode_cursor,
    encode_cursor,
    event_document,
)
from app.reporting.changes import CHANGE_COLUMNS, change_report
from app.reporting.contracts import contract_history
from app.reporting.drift import (
    DRIFT_COLUMNS,
    drift_rows,
    missing_rule_groups,
    renamed_rule_groups,
    rule_groups,
)
from app.reporting.lookups import find_group_ids, find_user_id, parse_as_of, parse_instant
from app.reporting.renewal import (
    DEFAULT_GRACE_DAYS,
    RENEWAL_COLUMNS,
    renewal_report,
    renewal_rows,
)
from app.reporting.seats import (
    SeatSummary,
    pending_users,
    seat_history,
    seat_summary,
    seat_totals,
)
from app.reporting.user_roles import user_access

__all__ = [
    "ACCESS_COLUMNS",
    "AUDIT_COLUMNS",
    "CHANGE_COLUMNS",
    "DEFAULT_GRACE_DAYS",
    "DRIFT_COLUMNS",
    "MEMBERSHIP_ACTIONS",
    "RENEWAL_COLUMNS",
    "SEATS",
    "STATUSES",
    "AccessFilters",
    "AuditFilters",
    "SeatSummary",
    "access_report",
    "audit_events",
    "audit_page",
    "audit_query",
    "change_report",
    "contract_history",
    "decode_cursor",
    "drift_rows",
    "encode_cursor",
    "event_document",
    "find_group_ids",
    "find_user_id",
    "missing_rule_groups",
    "parse_as_of",
    "parse_instant",
    "pending_users",
    "renamed_rule_groups",
    "renewal_report",
    "renewal_rows",
    "rule_groups",
    "seat_history",
    "seat_summary",
    "seat_totals",
    "user_access",
]
