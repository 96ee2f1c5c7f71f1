"""SCIM operations: protocol in, one service call, protocol out. Routes and /Bulk share them.

`context` authenticates the caller, `documents` serves discovery, `listing` reads listing
parameters and pages, `resource_types` holds what Users and Groups share (list, get, create,
replace, delete), `users` and `groups` what is their own (rendering, PATCH), `search` the root
/.search and `bulk` /Bulk.
"""

from scim.operations.bulk import bulk
from scim.operations.context import Context, Outcome, authenticate, token_error
from scim.operations.documents import find_document, list_of, service_provider_config
from scim.operations.groups import GROUPS, patch_group
from scim.operations.listing import Query, query_from, query_from_search
from scim.operations.resource_types import (
    ResourceType,
    create_resource,
    delete_resource,
    get_resource,
    list_resources,
    replace_resource,
)
from scim.operations.search import search_all
from scim.operations.users import USERS, patch_user

__all__ = [
    "GROUPS",
    "USERS",
    "Context",
    "Outcome",
    "Query",
    "ResourceType",
    "authenticate",
    "bulk",
    "create_resource",
    "delete_resource",
    "find_document",
    "get_resource",
    "list_of",
    "list_resources",
    "patch_group",
    "patch_user",
    "query_from",
    "query_from_search",
    "replace_resource",
    "search_all",
    "service_provider_config",
    "token_error",
]
