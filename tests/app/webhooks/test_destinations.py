"""SSRF: in production the worker delivers only over https and only to global addresses,
unless the operator's allow-list names the host or its network."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Environment, Settings
from app.delivery import Worker
from app.delivery.destinations import RefusedDestinationError, Resolver, check_destination
from app.models import Organization, WebhookAttempt
from tests.app.webhooks.support import Clock, Receiver, add_endpoint, add_event


def resolving_to(*addresses: str) -> Resolver:
    """A resolver that answers these addresses for any name."""
    return lambda _host, _port: list(addresses)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.10",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "100.64.0.1",
    ],
)
def test_production_refuses_private_loopback_and_link_local_addresses(address: str) -> None:
    with pytest.raises(RefusedDestinationError, match="BLUE_WEBHOOK_ALLOW_HOSTS"):
        check_destination("https://blue.example.com/h", True, (), resolving_to(address))


def test_one_private_address_among_public_ones_is_refused() -> None:
    with pytest.raises(RefusedDestinationError):
        check_destination(
            "https://blue.example.com/h", True, (), resolving_to("93.184.216.34", "10.0.0.7")
        )


def test_public_addresses_and_the_allow_list_pass() -> None:
    public = check_destination(
        "https://blue.example.com:8443/h?x=1", True, (), resolving_to("93.184.216.34")
    )
    assert (public.address, public.port, public.target) == ("93.184.216.34", 8443, "/h?x=1")
    by_name = check_destination(
        "https://blue.internal/h", True, ("blue.internal",), resolving_to("10.0.0.7")
    )
    assert by_name.address == "10.0.0.7"
    by_network = check_destination(
        "https://blue.internal/h", True, ("10.0.0.0/8",), resolving_to("10.0.0.7")
    )
    assert by_network.host == "blue.internal"


def test_production_refuses_http_and_development_allows_loopback() -> None:
    with pytest.raises(RefusedDestinationError, match="https"):
        check_destination("http://blue.example.com/h", True, (), resolving_to("93.184.216.34"))
    assert check_destination("http://localhost:9/h", False, ()).address in ("127.0.0.1", "::1")


def test_the_worker_in_production_refuses_a_loopback_endpoint_unless_allowed(
    app: Flask,
    settings: Settings,
    session: Session,
    organization: tuple[Organization, str],
    receiver: Receiver,
    clock: Clock,
) -> None:
    org, _ = organization
    production = replace(settings, environment=Environment.PRODUCTION)
    add_endpoint(session, org.id, f"https://localhost:{receiver.port}/h")
    add_event(session, org.id)

    refused = Worker(app.extensions["sessions"], production).run_once()

    assert refused.retrying == 1
    assert receiver.received == []
    error = session.scalar(select(WebhookAttempt.error))
    assert error is not None and error.startswith("refused: localhost resolves to")

    allowed = replace(production, webhook_allow_hosts=("localhost",))
    clock.advance(seconds=10)
    Worker(app.extensions["sessions"], allowed).run_once()
    errors = session.scalars(select(WebhookAttempt.error).order_by(WebhookAttempt.at)).all()
    # Allowed, it was tried: TLS to the plain-HTTP test receiver fails, but not as refused.
    assert len(errors) == 2
    assert errors[1] is not None and not errors[1].startswith("refused")
