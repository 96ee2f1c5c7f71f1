"""Access review and Audit pages: the access report as of a date, the change, renewal and
drift reports, and the audit trail with its verification. Everyone signed in reads them (org
admins and security reviewers alike); nothing here changes anything.

Filters are query parameters, so a filtered page is a link to share. Tables show a bounded page
of the report (`queries_review.PAGE_SIZE` rows); the exports stream every matching row as CSV
or JSON Lines with the writers the admin API and the CLI use (app.reporting.exports), in a
read-only unit of their own opened when the body is sent. Filters are checked before that, so
a group or user that names nothing is a 400 page, not a body cut short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from uuid import UUID

from flask import Response, abort, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app import reporting
from app.console import bp, error_page
from app.console.auth import console_user, reader
from app.console.queries_review import (
    CHANGE_KINDS,
    MAX_START,
    AccessQuery,
    ChangeQuery,
    Page,
    access_rows,
    audit_page,
    audit_rows,
    change_rows,
    check_access_query,
    check_audit_filters,
    drift,
    drift_rows,
    filter_choices,
    page_of,
    renewal,
    target_names,
    verify,
)
from app.db import read_only_unit, utcnow
from app.errors import ProvisioningError
from app.models import Organization
from app.reporting import AccessFilters, AuditFilters, exports
from app.reporting.exports import Format

DEFAULT_CHANGE_DAYS = 30
MAX_DAYS = 3650
EXPORT_FORMATS = {Format.CSV: "CSV", Format.JSONL: "JSON Lines"}
# The report pages, in the order of their tabs: (endpoint, label, export name).
REPORTS = (
    ("console.access_review", "Access as of a date", "access"),
    ("console.review_changes", "Changes", "changes"),
    ("console.review_renewal", "Renewal", "renewal"),
    ("console.review_drift", "Drift", "drift"),
)


class FilterError(Exception):
    """A query parameter that does not parse; the page says which and why."""


# ------------------------------------------------------------ query parameters


def text_arg(name: str) -> str | None:
    value = request.args.get(name, "").strip()
    return value or None


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    value = text_arg(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise FilterError(f"{name} must be a whole number") from None
    if not minimum <= number <= maximum:
        raise FilterError(f"{name} must be between {minimum} and {maximum}")
    return number


def choice_arg(name: str, choices: Iterable[str]) -> str | None:
    value = text_arg(name)
    allowed = list(choices)
    if value is not None and value not in allowed:
        raise FilterError(f"{name} must be one of: {', '.join(allowed)}")
    return value


def instant_arg(name: str, end_of_day: bool = False) -> datetime | None:
    """A date (or ISO 8601 datetime) in UTC; as an upper bound a date includes its day."""
    value = text_arg(name)
    if value is None:
        return None
    try:
        return reporting.parse_instant(value, end_of_day)
    except ValueError:
        raise FilterError(f"{name} must be a date (YYYY-MM-DD)") from None


def start_arg() -> int:
    return int_arg("start", 0, 0, MAX_START)


def format_arg() -> Format:
    value = choice_arg("format", [f.value for f in EXPORT_FORMATS])
    return Format(value) if value is not None else Format.CSV


def access_query() -> AccessQuery:
    as_of = text_arg("as_of")
    try:
        instant = reporting.parse_as_of(as_of) if as_of else None
    except ValueError:
        raise FilterError("as of must be a date (YYYY-MM-DD)") from None
    days = int_arg("not_logged_in_days", -1, 0, 36_500)
    filters = AccessFilters(
        project=text_arg("project"),
        role=text_arg("role"),
        seat=choice_arg("seat", reporting.SEATS),
        status=choice_arg("status", reporting.STATUSES),
        group=text_arg("group"),
        not_logged_in_days=days if days >= 0 else None,
        deactivated_with_role=text_arg("deactivated_with_role") is not None,
    )
    return AccessQuery(filters, instant, text_arg("user"))


def change_query() -> ChangeQuery:
    """The period [since, until): by default the last 30 days; a date as until includes it."""
    until = instant_arg("until", end_of_day=True) or utcnow()
    since = instant_arg("since") or until - timedelta(days=DEFAULT_CHANGE_DAYS)
    if until < since:
        raise FilterError("until must not be before since")
    return ChangeQuery(
        since=since,
        until=until,
        search=text_arg("user"),
        change=choice_arg("change", CHANGE_KINDS),
        project=text_arg("project"),
    )


def audit_filters(session: Session, organization: Organization) -> AuditFilters:
    since, until = instant_arg("since"), instant_arg("until", end_of_day=True)
    if since is not None and until is not None and until < since:
        raise FilterError("until must not be before since")
    user_id, group_ids = check_audit_filters(
        session, organization, text_arg("user"), text_arg("group")
    )
    return AuditFilters(
        since=since,
        until=until,
        actor=text_arg("actor"),
        actor_type=text_arg("actor_type"),
        action=text_arg("action"),
        user_id=user_id,
        group_ids=group_ids,
    )


# ------------------------------------------------------------------- pages


def url_with(endpoint: str | None = None, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None drops one)."""
    args: dict[str, Any] = request.args.to_dict()
    args.update(changes)
    kept = {name: value for name, value in args.items() if value not in (None, "")}
    return url_for(endpoint or request.endpoint or "console.index", **kept)


def export_links(endpoint: str, **values: str) -> list[tuple[str, str]]:
    """(label, URL) of an export in each format, with this page's filters, without paging."""
    return [
        (label, url_with(endpoint, format=format_.value, start=None, after=None, **values))
        for format_, label in EXPORT_FORMATS.items()
    ]


def report_exports(report: str) -> list[tuple[str, str]]:
    return export_links("console.review_export", report=report)


def paging(page: Page) -> dict[str, str | None]:
    """Links to the previous and next page of a `queries_review.Page`."""
    previous, following = page.previous_start, page.next_start
    return {
        "previous_url": url_with(start=previous or None) if previous is not None else None,
        "next_url": url_with(start=following) if following is not None else None,
    }


def show(
    template: str, read: Callable[[Session, Organization], dict[str, Any]]
) -> ResponseReturnValue:
    """Render a report page with what `read` finds in a read-only unit of work. A filter that
    does not parse or names nothing shows the form again with the reason (400)."""
    with read_only_unit() as session:
        organization = session.get_one(Organization, console_user().org_id)
        context: dict[str, Any] = {
            "choices": filter_choices(session, organization),
            "args": request.args,
            "reports": REPORTS,
            "change_kinds": CHANGE_KINDS,
            "seats": reporting.SEATS,
            "statuses": reporting.STATUSES,
        }
        status = HTTPStatus.OK
        try:
            context |= read(session, organization)
        except FilterError as error:
            context["error"], status = str(error), HTTPStatus.BAD_REQUEST
        except ProvisioningError as error:
            context["error"], status = error.detail, HTTPStatus.BAD_REQUEST
    return render_template(template, **context), status


@bp.get("/access-review")
@reader
def access_review() -> ResponseReturnValue:
    """Who has what: per user and project, as of now or as of the end of a past date."""

    def read(session: Session, organization: Organization) -> dict[str, Any]:
        query = access_query()
        check_access_query(session, organization, query)
        page = page_of(access_rows(session, organization, query), start_arg())
        return {
            "page": page,
            "exports": report_exports("access"),
            **paging(page),
        }

    return show("console/review_access.html", read)


@bp.get("/access-review/changes")
@reader
def review_changes() -> ResponseReturnValue:
    """Roles granted, changed and revoked, seats gained and released, with who and why."""

    def read(session: Session, organization: Organization) -> dict[str, Any]:
        query = change_query()
        page = page_of(change_rows(session, organization, query), start_arg())
        period = {"since": query.since, "until": query.until}
        return {
            "page": page,
            "period": period,
            "exports": report_exports("changes"),
            **paging(page),
        }

    return show("console/review_changes.html", read)


@bp.get("/access-review/renewal")
@reader
def review_renewal() -> ResponseReturnValue:
    """Paid seats by month against the tier of that month, reclaimable seats, forecast."""

    def read(session: Session, organization: Organization) -> dict[str, Any]:
        days = int_arg("reclaim_days", 30, 0, MAX_DAYS)
        grace = int_arg("grace_days", reporting.DEFAULT_GRACE_DAYS, 0, MAX_DAYS)
        report = renewal(session, organization, days, grace)
        return {
            "report": report,
            "exports": report_exports("renewal"),
        }

    return show("console/review_renewal.html", read)


@bp.get("/access-review/drift")
@reader
def review_drift() -> ResponseReturnValue:
    """Users whose roles differ from what the rules give now; rules whose group is gone or
    was renamed."""

    def read(session: Session, organization: Organization) -> dict[str, Any]:
        found = drift(session, organization, text_arg("user"), start_arg())
        return {
            "drift": found,
            "exports": report_exports("drift"),
            **paging(found.users),
        }

    return show("console/review_drift.html", read)


# ----------------------------------------------------------------- exports


Rows = Callable[[Session, Organization], Iterable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Export:
    """A report to stream: `prepare` checks the filters (before the response starts) and
    returns what reads the rows; `columns` are the CSV header; `name` goes in the filename."""

    prepare: Callable[[Session, Organization], Rows]
    columns: Sequence[str]
    name: str


def _stamp(instant: datetime) -> str:
    return instant.strftime("%Y%m%dT%H%M%SZ")


def access_export() -> Export:
    query = access_query()

    def prepare(session: Session, organization: Organization) -> Rows:
        check_access_query(session, organization, query)
        return lambda s, o: access_rows(s, o, query)

    return Export(prepare, reporting.ACCESS_COLUMNS, f"access-{_stamp(query.as_of or utcnow())}")


def changes_export() -> Export:
    query = change_query()

    def prepare(session: Session, organization: Organization) -> Rows:
        return lambda s, o: change_rows(s, o, query)

    name = f"changes-{_stamp(query.since)}-{_stamp(query.until)}"
    return Export(prepare, reporting.CHANGE_COLUMNS, name)


def renewal_export() -> Export:
    days = int_arg("reclaim_days", 30, 0, MAX_DAYS)
    grace = int_arg("grace_days", reporting.DEFAULT_GRACE_DAYS, 0, MAX_DAYS)

    def prepare(session: Session, organization: Organization) -> Rows:
        return lambda s, o: reporting.renewal_rows(renewal(s, o, days, grace))

    return Export(prepare, reporting.RENEWAL_COLUMNS, f"renewal-{_stamp(utcnow())}")


def drift_export() -> Export:
    search = text_arg("user")

    def prepare(session: Session, organization: Organization) -> Rows:
        return lambda s, o: drift_rows(s, o, search)

    return Export(prepare, reporting.DRIFT_COLUMNS, f"drift-{_stamp(utcnow())}")


EXPORTS: dict[str, Callable[[], Export]] = {
    "access": access_export,
    "changes": changes_export,
    "renewal": renewal_export,
    "drift": drift_export,
}


def stream(export: Callable[[], Export]) -> ResponseReturnValue:
    """Check the filters, then stream every matching row as an attachment."""
    org_id: UUID = console_user().org_id
    try:
        format_ = format_arg()
        chosen = export()
        with read_only_unit() as session:
            organization = session.get_one(Organization, org_id)
            produce = chosen.prepare(session, organization)
            filename = f"{organization.slug}-{chosen.name}.{format_.value}"
    except FilterError as error:
        return error_page("Export refused", str(error), HTTPStatus.BAD_REQUEST)
    except ProvisioningError as error:
        return error_page("Export refused", error.detail, HTTPStatus.BAD_REQUEST)

    def generate() -> Iterator[str]:
        with read_only_unit() as session:
            organization = session.get_one(Organization, org_id)
            rows = produce(session, organization)
            yield from exports.chunked(exports.render(format_, rows, chosen.columns))

    response = Response(stream_with_context(generate()), content_type=exports.MEDIA_TYPES[format_])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/access-review/<report>/export")
@reader
def review_export(report: str) -> ResponseReturnValue:
    """A report with this page's filters, every row, as CSV or JSON Lines."""
    export = EXPORTS.get(report)
    if export is None:
        abort(HTTPStatus.NOT_FOUND)
    return stream(export)


# ------------------------------------------------------------------- audit


def audit_export_of() -> Export:
    def prepare(session: Session, organization: Organization) -> Rows:
        filters = audit_filters(session, organization)
        return lambda s, o: audit_rows(s, o, filters)

    return Export(prepare, reporting.AUDIT_COLUMNS, f"audit-{_stamp(utcnow())}")


def show_audit(verified: bool) -> ResponseReturnValue:
    def read(session: Session, organization: Organization) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if verified:
            found["verification"] = verify(session, organization)
        filters = audit_filters(session, organization)
        try:
            events = audit_page(session, organization, filters, text_arg("after"))
        except ValueError:
            raise FilterError("the page link is not valid: start from the first page") from None
        next_url = url_with("console.audit", after=events["next_cursor"])
        return found | {
            "events": events["events"],
            "names": target_names(session, organization, events["events"]),
            "next_url": next_url if events["has_more"] else None,
            "first_url": url_with("console.audit", after=None) if text_arg("after") else None,
            "exports": export_links("console.audit_export"),
        }

    return show("console/audit.html", read)


@bp.get("/audit")
@reader
def audit() -> ResponseReturnValue:
    """The audit trail, filtered, in chain order, a page at a time."""
    return show_audit(verified=False)


@bp.get("/audit/verify")
@reader
def audit_verify() -> ResponseReturnValue:
    """The trail with its hash chain verified from the first event (it reads every event,
    so it runs when asked, not on every page)."""
    return show_audit(verified=True)


@bp.get("/audit/export")
@reader
def audit_export() -> ResponseReturnValue:
    """The filtered trail, every event, as CSV or JSON Lines."""
    return stream(audit_export_of)
