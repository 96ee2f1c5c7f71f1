"""Where the worker may send: the URL's scheme, and in production the resolved addresses.

A webhook URL is chosen by an organization's admin, so in production it must not reach the
service's own network (SSRF): every address the host resolves to must be global, unless the
operator's allow-list (BLUE_WEBHOOK_ALLOW_HOSTS: host names, addresses or networks) names it.
The worker then connects to the address checked here, never resolving the name again, so a
DNS answer that changes between the check and the connection (rebinding) cannot get past it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)

Resolver = Callable[[str, int], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedDestinationError(Exception):
    """The URL may not be delivered to (scheme, or an address the service must not reach)."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL: connect to `address`, speak to `host`."""

    scheme: str
    host: str
    port: int
    target: str  # path and query
    address: str


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the host name resolves to."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise RefusedDestinationError(f"cannot resolve {host}: {error.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def check_destination(
    url: str,
    production: bool,
    allow: Sequence[str] = (),
    resolve: Resolver = system_resolver,
) -> Destination:
    """The destination of `url`, or RefusedDestinationError saying why not."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise RefusedDestinationError(f"{url} is not an absolute http(s) URL")
    if production and parts.scheme != "https":
        raise RefusedDestinationError("only https URLs are delivered to in production")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    if not addresses:
        raise RefusedDestinationError(f"{host} resolves to no address")
    if production and host not in allow:
        for address in addresses:
            if not is_public(address) and not _allowed(address, allow):
                raise RefusedDestinationError(
                    f"{host} resolves to {address}, a private, loopback or link-local address; "
                    "BLUE_WEBHOOK_ALLOW_HOSTS can allow it"
                )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(parts.scheme, host, port, target, addresses[0])


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (an IPv4-mapped one by its IPv4 part)."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback address literals (development's http endpoints)."""
    host = host.lower().strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return _ip(host).is_loopback
    except ValueError:
        return False


def _allowed(address: str, allow: Sequence[str]) -> bool:
    ip = _ip(address)
    for entry in allow:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name: compared with the URL's host, not its addresses
    return False


def _ip(address: str) -> IpAddress:
    # A scoped IPv6 address (fe80::1%eth0) carries its zone after the percent sign.
    return ipaddress.ip_address(address.split("%", 1)[0])
