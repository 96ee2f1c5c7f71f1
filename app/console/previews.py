"""Preview, then confirm: how a console change that can move roles or seats is made.

The form posts to a preview: a dry run through the service (a savepoint rolled back, so
nothing is written) shows who would change, the seat totals after and whether the mass-grant
guard would hold it. The preview's Confirm form carries the same values to the confirm route,
which makes the change through the service in one unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from app.admin import changes
from app.console import queries_rules
from app.console.auth import console_actor, console_user
from app.console.proposals import Proposal
from app.db import unit_of_work
from app.errors import ConflictError, NotFoundError, ProvisioningError
from app.provisioning import ProvisioningService

# Renders a form's page again with what was refused, and a status.
Render = Callable[[str, int], ResponseReturnValue]


def refused(error: ProvisioningError, render: Render) -> ResponseReturnValue:
    """A refused change: another organization's (or a missing) id is 404; a conflict 409,
    anything else 400, on the form's page with the service's words."""
    if isinstance(error, NotFoundError):
        abort(HTTPStatus.NOT_FOUND)
    status = HTTPStatus.CONFLICT if isinstance(error, ConflictError) else HTTPStatus.BAD_REQUEST
    return render(error.detail, status)


def preview(
    build: Callable[[], Proposal], confirm_url: str, back_url: str, render: Render
) -> ResponseReturnValue:
    """Dry-run the proposal (a savepoint rolled back: nothing is written) and show its
    outcome with a Confirm form carrying the same values."""
    user = console_user()
    try:
        proposal = build()
        with unit_of_work() as session:
            service = ProvisioningService(session, user.org_id, console_actor())
            outcome = changes.dry_run(service, proposal.proposed)
            shown = queries_rules.preview(session, user.org_id, outcome)
    except ProvisioningError as error:
        return refused(error, render)
    return render_template(
        "console/rules_preview.html",
        proposal=proposal,
        preview=shown,
        confirm_url=confirm_url,
        back_url=back_url,
    )


def confirm(
    build: Callable[[], Proposal], done: str, render: Render, back: str = "console.rules"
) -> ResponseReturnValue:
    """Make a previewed change through the service; when the guard stages it instead, say
    so and link to the held change."""
    user = console_user()
    try:
        proposal = build()
        with unit_of_work() as session:
            held_id = proposal.apply(ProvisioningService(session, user.org_id, console_actor()))
    except ProvisioningError as error:
        return refused(error, render)
    if held_id is None:
        flash(done, "info")
    else:
        link = url_for("console.held_change", held_id=held_id)
        flash(
            Markup(
                "The mass-grant guard held this change: it is not in force until an admin "
                'confirms it. <a href="{}">Review the held change</a>.'
            ).format(link),
            "warning",
        )
    return redirect(url_for(back), HTTPStatus.SEE_OTHER)
