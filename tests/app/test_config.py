from __future__ import annotations

import pytest
from flask import Flask

from app import create_app
from app.config import DEV_SECRET_KEY, ConfigurationError, Environment, Settings

STRONG = "s" * 48


def test_defaults_use_embedded_sqlite_under_var() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///var/blue.db"
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.secret_key == DEV_SECRET_KEY
    assert settings.log_level == "INFO"


def test_values_are_read_from_blue_variables() -> None:
    settings = Settings.from_env(
        {
            "BLUE_DATABASE_URL": "postgresql+psycopg://db/blue",
            "BLUE_SECRET_KEY": STRONG,
            "BLUE_BASE_URL": "https://id.example.com/",
            "BLUE_LOG_LEVEL": "debug",
            "BLUE_ENV": "production",
            "BLUE_SCIM_MAX_RESULTS": "200",
        }
    )
    assert settings.database_url == "postgresql+psycopg://db/blue"
    assert settings.base_url == "https://id.example.com"
    assert settings.log_level == "DEBUG"
    assert settings.is_production
    assert settings.scim_max_results == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BLUE_ENV": "production", "BLUE_BASE_URL": "https://x"}, "BLUE_SECRET_KEY is required"),
        (
            {"BLUE_ENV": "production", "BLUE_SECRET_KEY": "short", "BLUE_BASE_URL": "https://x"},
            "BLUE_SECRET_KEY must be a real secret",
        ),
        (
            {
                "BLUE_ENV": "production",
                "BLUE_SECRET_KEY": DEV_SECRET_KEY,
                "BLUE_BASE_URL": "https://x",
            },
            "BLUE_SECRET_KEY must be a real secret",
        ),
        (
            {"BLUE_ENV": "production", "BLUE_SECRET_KEY": STRONG, "BLUE_BASE_URL": "http://x"},
            "BLUE_BASE_URL must be an https URL",
        ),
        ({"BLUE_ENV": "staging"}, "BLUE_ENV must be one of"),
        ({"BLUE_LOG_LEVEL": "LOUD"}, "BLUE_LOG_LEVEL must be one of"),
        ({"BLUE_BASE_URL": "id.example.com"}, "BLUE_BASE_URL must be an absolute"),
        ({"BLUE_SCIM_MAX_RESULTS": "many"}, "BLUE_SCIM_MAX_RESULTS must be an integer"),
        ({"BLUE_SCIM_MAX_RESULTS": "0"}, "BLUE_SCIM_MAX_RESULTS must be positive"),
    ],
)
def test_unusable_environment_is_refused_with_the_variable_named(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_factory_refuses_to_start_in_production_without_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BLUE_ENV", "production")
    monkeypatch.delenv("BLUE_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="BLUE_SECRET_KEY"):
        create_app()


def test_factory_refuses_invalid_settings_passed_in() -> None:
    bad = Settings(environment=Environment.PRODUCTION, base_url="https://x")
    with pytest.raises(ConfigurationError, match="BLUE_SECRET_KEY"):
        create_app(bad)


def test_factory_reads_environment_only_without_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("BLUE_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    monkeypatch.setenv("BLUE_BASE_URL", "http://blue.test:9000")
    app: Flask = create_app()
    assert app.extensions["settings"].base_url == "http://blue.test:9000"
    assert str(app.extensions["engine"].url).endswith("env.db")
