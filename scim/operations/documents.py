"""The discovery endpoints (RFC 7644 §4): /ServiceProviderConfig, /ResourceTypes, /Schemas."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from scim import discovery
from scim.errors import ScimError
from scim.operations.context import Context


def service_provider_config(context: Context) -> dict[str, Any]:
    """/ServiceProviderConfig with this deployment's limits."""
    settings = context.settings
    return discovery.service_provider_config(
        context.base_url,
        max_results=settings.scim_max_results,
        max_operations=settings.scim_bulk_max_operations,
        max_payload_size=settings.scim_bulk_max_payload_bytes,
    )


def list_of(resources_: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """All of `resources_` as one ListResponse page."""
    return {
        "schemas": [discovery.LIST_RESPONSE_SCHEMA],
        "totalResults": len(resources_),
        "startIndex": 1,
        "itemsPerPage": len(resources_),
        "Resources": list(resources_),
    }


def find_document(documents: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The document whose id or name is `key` (without case), or 404."""
    for document in documents:
        if key.lower() in (
            str(document.get("id", "")).lower(),
            str(document.get("name", "")).lower(),
        ):
            return document
    raise ScimError(HTTPStatus.NOT_FOUND, f"{key} not found")
