"""What every `blue-provisioning` command shares: the `--org` and `--json` options, JSON
printing, one unit of work per command acting as the operator, and how a refusal is reported."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

import licensing
from app import organizations
from app.audit import Actor
from app.db import read_only_unit, unit_of_work
from app.errors import ProvisioningError
from app.models import Organization
from app.provisioning import ProvisioningService

F = TypeVar("F", bound=Callable[..., Any])
Row = dict[str, Any]
MATCHES = [m.value for m in licensing.GroupMatch]
POLICIES = [p.value for p in licensing.OveragePolicy]
DATE = click.DateTime(formats=["%Y-%m-%d"])


def org_option(required: bool = True, help: str = "Organization slug.") -> Callable[[F], F]:
    """`--org SLUG`: the organization a command acts on, passed to it as `slug`."""
    return click.option("--org", "slug", required=required, help=help)


def json_option(help: str = "Print JSON.") -> Callable[[F], F]:
    """`--json`: print the document as JSON instead of lines, passed as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def echo_json(value: Any) -> None:
    """Print a document as indented JSON; dates and ids as their text."""
    click.echo(json.dumps(value, indent=2, default=str))


def echo_rows(rows: Sequence[Row], as_json: bool, line: Callable[[Row], str]) -> None:
    """Print the rows as one JSON array with `--json`, else one line each."""
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(line(row))


def nothing_to_change(*options: str) -> click.UsageError:
    """The usage error of an edit given no option to change, naming the options it takes."""
    if not options:
        return click.UsageError("nothing to change")
    listed = f"{', '.join(options[:-1])} or {options[-1]}" if len(options) > 1 else options[0]
    return click.UsageError(f"nothing to change: give {listed}")


@contextmanager
def reported_refusals() -> Iterator[None]:
    """A change or lookup the service refuses prints its reason and exits 1."""
    try:
        yield
    except ProvisioningError as error:
        raise click.ClickException(error.detail) from None


@contextmanager
def command_unit() -> Iterator[Session]:
    """One transaction for a command; a refused change prints its reason and exits non-zero."""
    with reported_refusals(), unit_of_work() as session:
        yield session


def cli_actor() -> Actor:
    """The operator running the command, as the audit trail records it."""
    try:
        label = getpass.getuser()
    except (OSError, KeyError, ImportError):
        label = ""
    return Actor(kind="cli", label=label or "cli")


@contextmanager
def org_service(slug: str) -> Iterator[ProvisioningService]:
    """One transaction acting on one organization as the operator."""
    with command_unit() as session:
        organization = organizations.get_organization(session, slug)
        yield ProvisioningService(session, organization, cli_actor())


@contextmanager
def org_reader(slug: str) -> Iterator[tuple[Session, Organization]]:
    """A read-only unit of work on one organization; a refusal prints and exits non-zero."""
    with reported_refusals(), read_only_unit() as session:
        yield session, organizations.get_organization(session, slug)
