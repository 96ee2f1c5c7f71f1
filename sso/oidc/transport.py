"""HTTP to the identity provider: JSON over https (plain http only to loopback when allowed),
bounded in size and time, never following a redirect."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sso.oidc.settings import OidcError

HTTP_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1_048_576
LOOPBACK_HOSTS = ("localhost",)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The provider's endpoints answer directly; a redirect is an error, never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Transport:
    """How the provider is reached: its URL policy and the timeout of every request."""

    allow_http_loopback: bool = False
    timeout: float = HTTP_TIMEOUT_SECONDS

    def check_url(self, reason: str, url: str) -> None:
        """OidcError unless the URL is https (or http to loopback, when allowed)."""
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme == "http" and self.allow_http_loopback and is_loopback(parts.hostname):
            return
        raise OidcError(reason, f"The identity provider's URL {url!r} is not an https URL.")

    def request(
        self,
        reason: str,
        url: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """GET (or POST a form) and parse the JSON answer; (status, document)."""
        self.check_url(reason, url)
        request = urllib.request.Request(
            url,
            data=urlencode(form).encode() if form is not None else None,
            headers={
                "Accept": "application/json",
                "User-Agent": "blue-provisioning",
                **(headers or {}),
            },
            method="POST" if form is not None else "GET",
        )
        if form is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read(MAX_RESPONSE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError):
            raise OidcError(reason, "The identity provider cannot be reached.") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise OidcError(reason, "The identity provider's answer is too large.")
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            if status != 200:
                return status, None
            raise OidcError(reason, "The identity provider's answer is not JSON.") from None


def is_loopback(host: str | None) -> bool:
    """Whether the host is this machine (a name we know, or a loopback address)."""
    if host is None:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
