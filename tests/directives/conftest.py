"""An imported region where nobody has linked to Max yet, and the directive helpers.

    R  Регион (head gov@)
    ├── A  Ведомство А (head a-head@), 2 employees + its head
    │   └── A1  Школа А1 (head a1-head@), 1 employee + its head
    └── B  Ведомство Б (head b-head@), 2 employees + its head
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask import g

from migrator.audit.service import Actor, acting_as
from migrator.imports.service import import_file
from migrator.progress.service import local_today

ORGS = ("code,name,parent_code,head_email\n"
        "R,Регион,,gov@example.org\n"
        "A,Ведомство А,R,a-head@example.org\n"
        "A1,Школа А1,A,a1-head@example.org\n"
        "B,Ведомство Б,R,b-head@example.org\n")
EMPLOYEES = ("email,full_name,org_code\n"
             "gov@example.org,Губернатор Иван Иванович,R\n"
             "a-head@example.org,Руководитель А,A\n"
             "a1@example.org,Сотрудник А 1,A\n"
             "a2@example.org,Сотрудник А 2,A\n"
             "a1-head@example.org,Директор А1,A1\n"
             "x1@example.org,Учитель А1,A1\n"
             "b-head@example.org,Руководитель Б,B\n"
             "b1@example.org,Сотрудник Б 1,B\n"
             "b2@example.org,Сотрудник Б 2,B\n")


@pytest.fixture(autouse=True)
def _files_dir(app_config, tmp_path):
    """Scans and produced reports go to the test's own folder."""
    app_config["DIRECTIVE_FILES_DIR"] = str(tmp_path / "files")


def do_import(kind: str, text: str, user=None):
    with acting_as(Actor("system", "test", "test")):
        result = import_file(kind, f"{kind}.csv", text.encode(), dry_run=False, user=user)
    assert result.ok, [str(e) for e in result.errors]
    return result


@pytest.fixture
def imported(ctx):
    """``imported(kind, csv_text, user=None)`` → the import's result (must succeed)."""
    return do_import


@pytest.fixture
def region(ctx):
    do_import("organisations", ORGS)
    do_import("employees", EMPLOYEES)
    from migrator.org.service import get_by_code

    return SimpleNamespace(**{c: get_by_code(c) for c in ("R", "A", "A1", "B")})


@pytest.fixture
def call(client):
    """``call(method, url, headers=..., **kw)``: a request as a fresh caller. The test's
    application context is shared with the client's requests, so the user Flask-Login
    cached in ``g`` for an earlier caller is dropped first."""

    def do(method: str, url: str, **kw):
        g.pop("_login_user", None)
        return client.open(url, method=method, **kw)

    return do


@pytest.fixture
def directive_payload():
    def make(scope="R", started_days_ago=10, due_in_days=10, metric="heads", target=100,
             extra=()):
        today = local_today()
        return {"title": "Поручение губернатора № 12", "issued_by": "Губернатор",
                "issued_at": (today - timedelta(days=started_days_ago)).isoformat(),
                "scope_org": scope,
                "milestones": [{"metric": metric, "target_percent": target,
                                "due": (today + timedelta(days=due_in_days)).isoformat()},
                               *extra]}

    return make
