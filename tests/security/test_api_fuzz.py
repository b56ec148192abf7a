"""Schemathesis against our own ``/api/v1/openapi.json`` with a Bearer token: bounded examples
per operation; no 5xx, and every answer (status, content type, body) matches the document."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from migrator.max.models import MaxChat
from migrator.waves.service import create_wave

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance)
EXAMPLES = 25  # per operation: the whole run stays well under a minute


@pytest.fixture
def api_world(app, ctx, make_org, make_employee, make_group, make_user, api_token):
    org = make_org(code="EDU")
    group = make_group(org, key="edu-chat", members=[make_employee(org)])
    ctx.add(MaxChat(chat_id=-700, title="Чат", status="discovered", org_id=org.id))
    ctx.commit()
    admin = make_user("admin")
    start = datetime.now(ZoneInfo("Asia/Yekaterinburg")) + timedelta(days=30)
    create_wave("Волна", [group.key], *(start + timedelta(days=i) for i in range(5)), user=admin)
    ctx.commit()
    return api_token(admin)


def test_api_matches_its_document_under_fuzzing(app, api_world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            case.headers = {**(case.headers or {}), **api_world}
            case.call_and_validate(checks=CHECKS)

        run()
