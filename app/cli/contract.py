"""`blue-provisioning contract …`: the organization's contract and overage policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from flask.cli import AppGroup

import licensing
from app.admin import changes, documents
from app.admin.changes import KEEP, ContractInput
from app.cli.common import (
    DATE,
    POLICIES,
    echo_json,
    json_option,
    nothing_to_change,
    org_option,
    org_service,
)

BILLING_TERMS = [b.value for b in licensing.BillingTerms]

contract_cli = AppGroup("contract", help="The organization's contract and overage policy.")


@contract_cli.command("set")
@org_option()
@click.option("--paid-seats", type=click.IntRange(min=0), default=None, help="Paid-seat tier.")
@click.option("--policy", type=click.Choice(POLICIES), default=None, help="Past the tier.")
@click.option("--billing-terms", type=click.Choice(BILLING_TERMS), default=None)
@click.option("--starts-on", type=DATE, default=None, help="YYYY-MM-DD")
@click.option("--ends-on", type=DATE, default=None, help="YYYY-MM-DD")
@json_option()
def contract_set(
    slug: str,
    paid_seats: int | None,
    policy: str | None,
    billing_terms: str | None,
    starts_on: datetime | None,
    ends_on: datetime | None,
    as_json: bool,
) -> None:
    """Change the contract; options left out keep their current value."""
    contract = ContractInput(
        paid_seats=KEEP if paid_seats is None else paid_seats,
        policy=KEEP if policy is None else policy,
        billing_terms=KEEP if billing_terms is None else billing_terms,
        starts_on=KEEP if starts_on is None else starts_on.date(),
        ends_on=KEEP if ends_on is None else ends_on.date(),
    )
    if contract.is_empty:
        raise nothing_to_change(
            "--paid-seats", "--policy", "--billing-terms", "--starts-on", "--ends-on"
        )
    with org_service(slug) as service:
        document = documents.contract(changes.set_contract(service, contract))
    _echo_contract(slug, document, as_json)


@contract_cli.command("show")
@org_option()
@json_option()
def contract_show(slug: str, as_json: bool) -> None:
    """Show the contract and the mass-grant guard thresholds."""
    with org_service(slug) as service:
        document = documents.contract(service.organization)
    _echo_contract(slug, document, as_json)


def _echo_contract(slug: str, document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(document)
        return
    period = f"{document['starts_on'] or '…'} – {document['ends_on'] or '…'}"
    click.echo(
        f"{slug}: {document['paid_seats']} paid seats, policy {document['policy']}, "
        f"billed {document['billing_terms']}, {period}"
    )
