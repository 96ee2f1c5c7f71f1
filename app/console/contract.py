"""The Contract page: tier, period and overage policy in force, their versions, paid seats
against the tier and the pending queue in arrival order. An admin changes the contract
through the same dry-run preview as a rule (a larger tier or `allow` promotes pending users;
nothing is written until Confirm)."""

from __future__ import annotations

from http import HTTPStatus

from flask import render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.console import bp, proposals, queries_contract
from app.console.auth import admin, console_user, reader
from app.console.previews import confirm, preview
from app.db import read_only_unit


@bp.get("/contract")
@reader
def contract() -> ResponseReturnValue:
    """The contract, its history and who waits for a paid seat."""
    return render_contract()


def render_contract(error: str | None = None, status: int = HTTPStatus.OK) -> ResponseReturnValue:
    user = console_user()
    with read_only_unit() as session:
        page = queries_contract.contract_page(session, user.org_id)
    body = render_template(
        "console/contract.html",
        page=page,
        error=error,
        form=request.form if error is not None else None,
        policies=proposals.POLICIES,
        billing_terms=proposals.BILLING_TERMS,
    )
    return body, status


@bp.post("/contract")
@admin
def preview_contract() -> ResponseReturnValue:
    """What the new contract would do to seats (pending users promoted), before it is set."""
    return preview(
        lambda: proposals.contract(request.form),
        url_for("console.confirm_contract"),
        url_for("console.contract"),
        render_contract,
    )


@bp.post("/contract/confirm")
@admin
def confirm_contract() -> ResponseReturnValue:
    return confirm(
        lambda: proposals.contract(request.form),
        "Contract changed.",
        render_contract,
        back="console.contract",
    )
