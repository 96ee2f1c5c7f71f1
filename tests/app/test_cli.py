from __future__ import annotations

import json

from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Organization, ScimToken
from app.organizations import authenticate_token, hash_token


def create_acme(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["org", "create", "Acme", "--slug", "acme", "--paid-seats", "500"])
    assert result.exit_code == 0, result.output


def test_org_create_and_list(runner: FlaskCliRunner) -> None:
    create_acme(runner)
    result = runner.invoke(args=["org", "list", "--json"])
    assert result.exit_code == 0
    [acme] = json.loads(result.output)
    assert acme["slug"] == "acme"
    assert acme["name"] == "Acme"
    assert acme["paid_seat_tier"] == 500
    assert acme["overage_policy"] == "allow"
    assert "acme" in runner.invoke(args=["org", "list"]).output


def test_duplicate_slug_is_refused_and_changes_nothing(
    runner: FlaskCliRunner, session: Session
) -> None:
    create_acme(runner)
    result = runner.invoke(args=["org", "create", "Other", "--slug", "acme"])
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert session.scalar(select(func.count()).select_from(Organization)) == 1


def test_malformed_slug_and_negative_seats_are_refused(runner: FlaskCliRunner) -> None:
    bad_slug = runner.invoke(args=["org", "create", "X", "--slug", "Not A Slug"])
    assert bad_slug.exit_code != 0
    assert "slug" in bad_slug.output
    negative = runner.invoke(args=["org", "create", "X", "--slug", "x", "--paid-seats", "-1"])
    assert negative.exit_code != 0


def test_token_create_prints_secret_alone_on_last_line_and_stores_only_hash(
    runner: FlaskCliRunner, session: Session
) -> None:
    create_acme(runner)
    result = runner.invoke(args=["token", "create", "--org", "acme", "--label", "okta"])
    assert result.exit_code == 0, result.output
    secret = result.output.rstrip("\n").splitlines()[-1]
    assert secret.startswith("blue_scim_") and " " not in secret
    token = session.scalars(select(ScimToken)).one()
    assert token.token_hash == hash_token(secret)
    assert secret not in (token.token_hash, token.prefix, token.label)
    assert token.last_used_at is None
    assert authenticate_token(session, secret) is token
    assert token.last_used_at is not None


def test_token_for_unknown_org_is_refused(runner: FlaskCliRunner, session: Session) -> None:
    result = runner.invoke(args=["token", "create", "--org", "nope", "--label", "okta"])
    assert result.exit_code != 0
    assert "no organization with slug 'nope'" in result.output
    assert session.scalar(select(func.count()).select_from(ScimToken)) == 0


def test_duplicate_token_label_is_refused(runner: FlaskCliRunner) -> None:
    create_acme(runner)
    assert (
        runner.invoke(args=["token", "create", "--org", "acme", "--label", "okta"]).exit_code == 0
    )
    again = runner.invoke(args=["token", "create", "--org", "acme", "--label", "okta"])
    assert again.exit_code != 0
    assert "already has a token" in again.output


def test_token_list_never_shows_secrets(runner: FlaskCliRunner) -> None:
    create_acme(runner)
    created = runner.invoke(args=["token", "create", "--org", "acme", "--label", "okta"])
    secret = created.output.splitlines()[-1]
    listed = runner.invoke(args=["token", "list", "--org", "acme", "--json"])
    assert listed.exit_code == 0
    [row] = json.loads(listed.output)
    assert row["label"] == "okta" and row["revoked_at"] is None
    assert secret not in listed.output
    assert secret not in runner.invoke(args=["token", "list"]).output


def test_revoked_token_no_longer_authenticates(runner: FlaskCliRunner, session: Session) -> None:
    create_acme(runner)
    created = runner.invoke(args=["token", "create", "--org", "acme", "--label", "okta"])
    secret = created.output.splitlines()[-1]
    result = runner.invoke(args=["token", "revoke", "--org", "acme", "--label", "okta"])
    assert result.exit_code == 0, result.output
    assert authenticate_token(session, secret) is None
    listed = json.loads(runner.invoke(args=["token", "list", "--json"]).output)
    assert listed[0]["revoked_at"] is not None


def test_revoke_unknown_token_is_refused(runner: FlaskCliRunner) -> None:
    create_acme(runner)
    result = runner.invoke(args=["token", "revoke", "--org", "acme", "--label", "ghost"])
    assert result.exit_code != 0
    assert "has no token 'ghost'" in result.output


def test_wrong_or_malformed_tokens_do_not_authenticate(
    runner: FlaskCliRunner, session: Session
) -> None:
    create_acme(runner)
    created = runner.invoke(args=["token", "create", "--org", "acme", "--label", "okta"])
    secret = created.output.splitlines()[-1]
    assert authenticate_token(session, secret + "x") is None
    assert authenticate_token(session, "") is None
    assert authenticate_token(session, hash_token(secret)) is None


def test_demo_seed_creates_once_and_reuses(
    runner: FlaskCliRunner, session: Session, tmp_path: object
) -> None:
    token_file = f"{tmp_path}/demo-token"
    first = runner.invoke(args=["demo", "seed", "--token-file", token_file])
    assert first.exit_code == 0, first.output
    assert "http://localhost/scim/v2" in first.output
    second = runner.invoke(args=["demo", "seed", "--token-file", token_file])
    assert second.exit_code == 0
    token_line = [line for line in first.output.splitlines() if "SCIM token" in line]
    assert token_line and token_line == [
        line for line in second.output.splitlines() if "SCIM token" in line
    ]
    assert session.scalar(select(func.count()).select_from(Organization)) == 1
    assert session.scalar(select(func.count()).select_from(ScimToken)) == 1


def test_org_set_and_domains(runner: FlaskCliRunner, session: Session) -> None:
    create_acme(runner)
    result = runner.invoke(
        args=[
            "org",
            "set",
            "--org",
            "acme",
            "--blue-url",
            "https://blue.example/sso/handoff",
            "--no-sso-groups",
            "--no-role-policy",
            "default",
        ]
    )
    assert result.exit_code == 0, result.output
    org = session.scalars(select(Organization)).one()
    session.refresh(org)
    assert org.blue_url == "https://blue.example/sso/handoff"
    assert org.sso_manages_groups is False and org.sso_no_role_policy == "default"
    assert runner.invoke(args=["org", "set", "--org", "acme", "--blue-url", "ftp://x"]).exit_code
    added = runner.invoke(args=["org", "domain", "add", "--org", "acme", "Acme.Example"])
    assert added.exit_code == 0, added.output
    assert runner.invoke(args=["org", "domain", "list", "--org", "acme"]).output == "acme.example\n"
    bad = runner.invoke(args=["org", "domain", "add", "--org", "acme", "not a domain"])
    assert bad.exit_code != 0 and "not a domain name" in bad.output
    runner.invoke(args=["org", "create", "Globex", "--slug", "globex"])
    taken = runner.invoke(args=["org", "domain", "add", "--org", "globex", "acme.example"])
    assert taken.exit_code != 0 and "another organization" in taken.output


def test_admin_scoped_token(runner: FlaskCliRunner) -> None:
    create_acme(runner)
    result = runner.invoke(
        args=["token", "create", "--org", "acme", "--label", "ops", "--scope", "admin"]
    )
    assert result.exit_code == 0 and result.output.startswith("admin token 'ops'")
    [row] = json.loads(runner.invoke(args=["token", "list", "--json"]).output)
    assert row["scope"] == "admin"
