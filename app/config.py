"""Typed configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production"
MIN_SECRET_KEY_LENGTH = 32
DEFAULT_DATABASE_URL = "sqlite:///var/blue.db"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_SCIM_MAX_RESULTS = 1000
DEFAULT_BULK_MAX_OPERATIONS = 1000
DEFAULT_BULK_MAX_PAYLOAD_BYTES = 1_048_576
DEFAULT_SCIM_RATE_LIMIT = 6000
# No single statement, nor a wait for a row lock, may hold a request (and those queued behind
# its locks) longer than this on PostgreSQL: past it the request answers 503 with Retry-After.
DEFAULT_DB_STATEMENT_TIMEOUT_MS = 30_000
DEFAULT_DB_LOCK_TIMEOUT_MS = 5_000
DEFAULT_WEBHOOK_MAX_ATTEMPTS = 30
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10
DEFAULT_WEBHOOK_POLL_MS = 200
DEFAULT_WEBHOOK_BACKOFF_SECONDS = 5
DEFAULT_WEBHOOK_BACKOFF_MAX_SECONDS = 3600
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigurationError(Exception):
    """The environment does not describe a runnable service."""


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = DEV_SECRET_KEY
    base_url: str = DEFAULT_BASE_URL
    log_level: str = "INFO"
    environment: Environment = Environment.DEVELOPMENT
    scim_max_results: int = DEFAULT_SCIM_MAX_RESULTS
    scim_bulk_max_operations: int = DEFAULT_BULK_MAX_OPERATIONS
    scim_bulk_max_payload_bytes: int = DEFAULT_BULK_MAX_PAYLOAD_BYTES
    # Requests per minute per SCIM token; 0 turns the limit off.
    scim_rate_limit: int = DEFAULT_SCIM_RATE_LIMIT
    # Webhook delivery (app/delivery): hosts or networks the worker may reach although they are
    # private, loopback or link-local (refused in production otherwise: SSRF).
    webhook_allow_hosts: tuple[str, ...] = ()
    webhook_max_attempts: int = DEFAULT_WEBHOOK_MAX_ATTEMPTS
    webhook_timeout_seconds: int = DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    webhook_poll_ms: int = DEFAULT_WEBHOOK_POLL_MS
    webhook_backoff_seconds: int = DEFAULT_WEBHOOK_BACKOFF_SECONDS
    webhook_backoff_max_seconds: int = DEFAULT_WEBHOOK_BACKOFF_MAX_SECONDS
    db_statement_timeout_ms: int = DEFAULT_DB_STATEMENT_TIMEOUT_MS
    db_lock_timeout_ms: int = DEFAULT_DB_LOCK_TIMEOUT_MS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Self:
        """Build settings from BLUE_* variables; raise ConfigurationError when they are unusable."""
        try:
            environment = Environment(env.get("BLUE_ENV", Environment.DEVELOPMENT).lower())
        except ValueError:
            allowed = ", ".join(e.value for e in Environment)
            raise ConfigurationError(f"BLUE_ENV must be one of: {allowed}") from None
        secret_key = env.get("BLUE_SECRET_KEY", "")
        if not secret_key:
            if environment is Environment.PRODUCTION:
                raise ConfigurationError(
                    "BLUE_SECRET_KEY is required in production: set it to a random value of at "
                    f"least {MIN_SECRET_KEY_LENGTH} characters (e.g. `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'`)"
                )
            secret_key = DEV_SECRET_KEY
        settings = cls(
            database_url=env.get("BLUE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            secret_key=secret_key,
            base_url=(env.get("BLUE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            log_level=env.get("BLUE_LOG_LEVEL", "INFO").upper(),
            environment=environment,
            scim_max_results=_int(env, "BLUE_SCIM_MAX_RESULTS", DEFAULT_SCIM_MAX_RESULTS),
            scim_bulk_max_operations=_int(
                env, "BLUE_SCIM_BULK_MAX_OPERATIONS", DEFAULT_BULK_MAX_OPERATIONS
            ),
            scim_bulk_max_payload_bytes=_int(
                env, "BLUE_SCIM_BULK_MAX_PAYLOAD_BYTES", DEFAULT_BULK_MAX_PAYLOAD_BYTES
            ),
            scim_rate_limit=_int(
                env, "BLUE_SCIM_RATE_LIMIT", DEFAULT_SCIM_RATE_LIMIT, allow_zero=True
            ),
            webhook_allow_hosts=tuple(
                host.strip().lower()
                for host in env.get("BLUE_WEBHOOK_ALLOW_HOSTS", "").split(",")
                if host.strip()
            ),
            webhook_max_attempts=_int(
                env, "BLUE_WEBHOOK_MAX_ATTEMPTS", DEFAULT_WEBHOOK_MAX_ATTEMPTS
            ),
            webhook_timeout_seconds=_int(
                env, "BLUE_WEBHOOK_TIMEOUT_SECONDS", DEFAULT_WEBHOOK_TIMEOUT_SECONDS
            ),
            webhook_poll_ms=_int(env, "BLUE_WEBHOOK_POLL_MS", DEFAULT_WEBHOOK_POLL_MS),
            webhook_backoff_seconds=_int(
                env, "BLUE_WEBHOOK_BACKOFF_SECONDS", DEFAULT_WEBHOOK_BACKOFF_SECONDS
            ),
            webhook_backoff_max_seconds=_int(
                env, "BLUE_WEBHOOK_BACKOFF_MAX_SECONDS", DEFAULT_WEBHOOK_BACKOFF_MAX_SECONDS
            ),
            db_statement_timeout_ms=_int(
                env, "BLUE_DB_STATEMENT_TIMEOUT_MS", DEFAULT_DB_STATEMENT_TIMEOUT_MS, True
            ),
            db_lock_timeout_ms=_int(
                env, "BLUE_DB_LOCK_TIMEOUT_MS", DEFAULT_DB_LOCK_TIMEOUT_MS, allow_zero=True
            ),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigurationError for values the service must not start with."""
        if self.log_level not in LOG_LEVELS:
            raise ConfigurationError(f"BLUE_LOG_LEVEL must be one of: {', '.join(LOG_LEVELS)}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError("BLUE_BASE_URL must be an absolute http(s) URL")
        if self.environment is Environment.PRODUCTION:
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
                raise ConfigurationError(
                    "BLUE_SECRET_KEY must be a real secret of at least "
                    f"{MIN_SECRET_KEY_LENGTH} characters in production"
                )
            if not self.base_url.startswith("https://"):
                raise ConfigurationError("BLUE_BASE_URL must be an https URL in production")

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION


def _int(env: Mapping[str, str], name: str, default: int, allow_zero: bool = False) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be positive, got {value}")
    return value
