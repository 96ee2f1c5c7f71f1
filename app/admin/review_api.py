"""The audit trail and the access-review reports on the admin API (/api/v1/audit, /reports).

Reads authenticate in a short transaction of their own (the token's last use and the rate
limit are writes), then read in a read-only unit of work. Exports stream: the generator opens
its own read-only unit when the body is sent and holds one row at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from flask import Response, request, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app import audit, reporting
from app.admin.api import api_blueprint, authenticate, int_arg, json_response
from app.admin.payloads import PayloadError
from app.db import read_only_unit, unit_of_work, utcnow
from app.logs import current_request_id
from app.models import Organization
from app.provisioning import Actor, ProvisioningService
from app.reporting import AccessFilters, AuditFilters, exports
from app.reporting.exports import Format

bp = api_blueprint("review")

log = logging.getLogger(__name__)
# Reports only read; the service is asked for the role catalogue and the drift, never a change.
READER = Actor(kind="api", label="report")
MAX_PAGE = 1000
DEFAULT_CHANGE_DAYS = 30
MAX_RECLAIM_DAYS = 3650
TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no")


# ---------------------------------------------------------------- plumbing


def _organization_id() -> UUID:
    """The bearer token's organization (401/403/429 otherwise); the check is committed."""
    with unit_of_work() as session:
        return authenticate(session, write=False).organization.id


def read(operation: Callable[[Session, Organization], Any]) -> Response:
    """Authenticate, then answer with what `operation` reads in a read-only unit of work."""
    org_id = _organization_id()
    with read_only_unit() as session:
        body = operation(session, session.get_one(Organization, org_id))
    return json_response(body)


@dataclass(frozen=True, slots=True)
class Export:
    """A streamed body: the text `produce` writes, in `format`, offered as `filename`."""

    produce: Callable[[Session, Organization], Iterator[str]]
    format: Format
    filename: str


def stream(prepare: Callable[[Session, Organization], Export]) -> Response:
    """Authenticate, check the parameters (errors answer before the body starts), then stream."""
    org_id = _organization_id()
    with read_only_unit() as session:
        export = prepare(session, session.get_one(Organization, org_id))
    request_id = current_request_id()

    def generate() -> Iterator[str]:
        with read_only_unit() as session:
            organization = session.get_one(Organization, org_id)
            try:
                yield from exports.chunked(export.produce(session, organization))
            except Exception:
                # The status line is sent already: all that is left is to cut the body short.
                log.exception("export failed mid-stream", extra={"request_id": request_id})
                raise

    response = Response(
        stream_with_context(generate()), content_type=exports.MEDIA_TYPES[export.format]
    )
    if export.format is not Format.JSON:
        response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


def text_arg(name: str) -> str | None:
    value = request.args.get(name, "").strip()
    return value or None


def choice_arg(name: str, choices: Sequence[str]) -> str | None:
    value = text_arg(name)
    if value is not None and value not in choices:
        raise PayloadError(f"query parameter {name} must be one of: {', '.join(choices)}")
    return value


def format_arg(default: Format, allowed: Sequence[Format] = tuple(Format)) -> Format:
    value = choice_arg("format", [f.value for f in allowed])
    return Format(value) if value is not None else default


def flag_arg(name: str) -> bool:
    value = (text_arg(name) or "false").lower()
    if value not in TRUE + FALSE:
        raise PayloadError(f"query parameter {name} must be true or false")
    return value in TRUE


def instant_arg(name: str, end_of_day: bool = False) -> datetime | None:
    value = text_arg(name)
    if value is None:
        return None
    try:
        return reporting.parse_instant(value, end_of_day)
    except ValueError:
        raise PayloadError(f"query parameter {name} must be an ISO 8601 date or datetime") from None


def as_of_arg() -> datetime | None:
    value = text_arg("as_of")
    if value is None:
        return None
    try:
        return reporting.parse_as_of(value)
    except ValueError:
        raise PayloadError("query parameter as_of must be an ISO 8601 date or datetime") from None


def period_args() -> tuple[datetime, datetime]:
    """`since` (inclusive) and `until` (exclusive; a date includes that day): default 30 days."""
    until = instant_arg("until", end_of_day=True) or utcnow()
    since = instant_arg("since") or until - timedelta(days=DEFAULT_CHANGE_DAYS)
    if until < since:
        raise PayloadError("until must not be before since")
    return since, until


def _stamp(instant: datetime) -> str:
    return instant.strftime("%Y%m%dT%H%M%SZ")


# ------------------------------------------------------------- audit trail


def audit_filters(session: Session, organization: Organization) -> AuditFilters:
    """The audit filters of the query string; an unknown user or group is 404."""
    user = text_arg("user")
    group = text_arg("group")
    since, until = instant_arg("since"), instant_arg("until", end_of_day=True)
    if since is not None and until is not None and until < since:
        raise PayloadError("until must not be before since")
    return AuditFilters(
        since=since,
        until=until,
        actor=text_arg("actor"),
        actor_type=text_arg("actor_type"),
        action=text_arg("action"),
        user_id=reporting.find_user_id(session, organization, user) if user else None,
        group_ids=reporting.find_group_ids(session, organization, group) if group else None,
    )


@bp.get("/audit")
def query_audit() -> ResponseReturnValue:
    def page(session: Session, organization: Organization) -> Any:
        filters = audit_filters(session, organization)
        limit = int_arg("limit", 100, 1, MAX_PAGE)
        cursor = text_arg("cursor")
        try:
            return reporting.audit_page(session, organization, filters, cursor, limit)
        except ValueError as error:
            raise PayloadError(f"query parameter cursor: {error}") from None

    return read(page)


@bp.get("/audit/export")
def export_audit() -> ResponseReturnValue:
    def prepare(session: Session, organization: Organization) -> Export:
        filters = audit_filters(session, organization)
        format_ = format_arg(Format.JSONL)

        def produce(session: Session, organization: Organization) -> Iterator[str]:
            events = reporting.audit_events(session, organization, filters)
            return exports.render(format_, events, reporting.AUDIT_COLUMNS, key="events")

        stamp = _stamp(utcnow())
        return Export(produce, format_, f"{organization.slug}-audit-{stamp}.{format_}")

    return stream(prepare)


@bp.get("/audit/verify")
def verify_audit() -> ResponseReturnValue:
    def verify(session: Session, organization: Organization) -> Any:
        result = audit.verify(session, organization.id)
        return {
            "ok": result.is_ok,
            "count": result.count,
            "head_hash": result.head_hash,
            "broken_at": result.broken_at,
            "problem": result.problem,
        }

    return read(verify)


# ----------------------------------------------------------------- reports


def access_filters(service: ProvisioningService, as_of: datetime | None) -> AccessFilters:
    """The access report's filters; a role may be given by key or name, a group by id or name
    (as of a past moment, also a name the group had then)."""
    role = text_arg("role")
    group = text_arg("group")
    if group is not None:
        reporting.find_group_ids(
            service.session, service.organization, group, history=as_of is not None
        )
    days = int_arg("not_logged_in_days", -1, 0, 36_500)
    return AccessFilters(
        project=text_arg("project"),
        role=service.role_key(role) if role else None,
        seat=choice_arg("seat", reporting.SEATS),
        status=choice_arg("status", reporting.STATUSES),
        group=group,
        not_logged_in_days=days if days >= 0 else None,
        deactivated_with_role=flag_arg("deactivated_with_role"),
    )


@bp.get("/reports/access")
def export_access_report() -> ResponseReturnValue:
    def prepare(session: Session, organization: Organization) -> Export:
        as_of = as_of_arg()
        filters = access_filters(ProvisioningService(session, organization, READER), as_of)
        format_ = format_arg(Format.JSON)

        def produce(session: Session, organization: Organization) -> Iterator[str]:
            catalogue = ProvisioningService(session, organization, READER).catalogue()
            rows = reporting.access_report(session, organization, catalogue, filters, as_of)
            head = {"as_of": (as_of or utcnow()).isoformat()}
            return exports.render(format_, rows, reporting.ACCESS_COLUMNS, head)

        stamp = _stamp(as_of or utcnow())
        return Export(produce, format_, f"{organization.slug}-access-{stamp}.{format_}")

    return stream(prepare)


@bp.get("/reports/changes")
def export_change_report() -> ResponseReturnValue:
    def prepare(session: Session, organization: Organization) -> Export:
        since, until = period_args()
        format_ = format_arg(Format.JSON)

        def produce(session: Session, organization: Organization) -> Iterator[str]:
            rows = reporting.change_report(session, organization, since, until)
            head = {"since": since.isoformat(), "until": until.isoformat()}
            return exports.render(format_, rows, reporting.CHANGE_COLUMNS, head)

        name = f"{organization.slug}-changes-{_stamp(since)}-{_stamp(until)}.{format_}"
        return Export(produce, format_, name)

    return stream(prepare)


@bp.get("/reports/renewal")
def get_renewal_report() -> ResponseReturnValue:
    org_id = _organization_id()
    format_ = format_arg(Format.JSON)
    days = int_arg("reclaim_days", 30, 0, MAX_RECLAIM_DAYS)
    grace = int_arg("grace_days", reporting.DEFAULT_GRACE_DAYS, 0, MAX_RECLAIM_DAYS)
    with read_only_unit() as session:
        organization = session.get_one(Organization, org_id)
        report = reporting.renewal_report(session, organization, days, grace)
    if format_ is Format.JSON:
        return json_response(report)
    rows = reporting.renewal_rows(report)
    body = "".join(exports.render(format_, rows, reporting.RENEWAL_COLUMNS))
    return Response(body, content_type=exports.MEDIA_TYPES[format_])


@bp.get("/reports/drift")
def export_drift_report() -> ResponseReturnValue:
    def prepare(session: Session, organization: Organization) -> Export:
        format_ = format_arg(Format.JSON)

        def produce(session: Session, organization: Organization) -> Iterator[str]:
            rules = reporting.rule_groups(session, organization)
            users = ProvisioningService(session, organization, READER).drift()
            if format_ is Format.JSON:
                return exports.json_document(rules, "users", users)
            rows = reporting.drift_rows(rules, users)
            return exports.render(format_, rows, reporting.DRIFT_COLUMNS)

        stamp = _stamp(utcnow())
        return Export(produce, format_, f"{organization.slug}-drift-{stamp}.{format_}")

    return stream(prepare)
