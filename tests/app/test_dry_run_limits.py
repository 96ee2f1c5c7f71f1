"""A dry run cannot hold an organization hostage (issue #16 item 1): its size is bounded, and
while it runs it takes no lock the organization's writers need."""

from __future__ import annotations

import threading
import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import create_app
from app.admin.payloads import MAX_DRY_RUN_CHANGES
from app.config import Settings
from app.models import Organization
from app.provisioning import OPERATOR, ProvisioningService, RuleSpec
from tests.app.test_admin_api import Api, assert_error
from tests.support import ScimClient, admin_token, make_org

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def api(client: FlaskClient, session: Session, organization: tuple[Organization, str]) -> Api:
    return Api(client, admin_token(session, organization[0]))


def test_a_dry_run_past_the_maximum_is_413(api: Api) -> None:
    rules = [{"group": f"G{n}", "role": "team_member"} for n in range(MAX_DRY_RUN_CHANGES + 1)]
    detail = assert_error(api.post("/dry-run", {"add_rules": rules}), 413, "too_many_changes")
    assert str(MAX_DRY_RUN_CHANGES) in detail
    at_most = api.post("/dry-run", {"add_rules": rules[:MAX_DRY_RUN_CHANGES]})
    assert at_most.status_code == 200, at_most.get_data(as_text=True)


@pytest.mark.postgresql_only
def test_scim_writes_go_on_while_a_dry_run_is_under_way(separate_database: Settings) -> None:
    app = create_app(separate_database)
    engine: Engine = app.extensions["engine"]
    with app.app_context(), app.extensions["sessions"]() as session:
        organization, secret = make_org(session, "acme")
        ProvisioningService(session, organization, OPERATOR).create_rule(
            RuleSpec("displayName", "Everyone", "team_member")
        )
        session.commit()
    scim = ScimClient(app.test_client(), secret, uuid.uuid4())
    inside, release = threading.Event(), threading.Event()

    def slow_change(trial: ProvisioningService) -> None:
        trial.create_rule(RuleSpec("displayName", "Staff", "project_admin"))
        inside.set()  # the dry run has made its change and would hold its locks now
        release.wait(30)

    def run_dry_run() -> None:
        with Session(engine) as session:
            ProvisioningService(session, organization.id, OPERATOR).dry_run(slow_change)
            session.rollback()

    runner = threading.Thread(target=run_dry_run)
    runner.start()
    try:
        assert inside.wait(30)
        created = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "new@acme.example"})
        assert created.status_code == 201, created.json
        assert runner.is_alive()  # the create did not wait for the dry run to end
    finally:
        release.set()
        runner.join()
        engine.dispose()
