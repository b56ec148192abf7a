"""Shared fixtures: a real database per test (SQLite file or PostgreSQL), the app, clients,
factories for organisations, employees, groups and users, and a live server.

The database comes from ``TEST_DATABASE_URL`` (PostgreSQL) or a fresh SQLite file.
The schema is migrated once per session with Alembic; each test starts from empty tables.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings
from werkzeug.serving import make_server

from migrator import create_app
from migrator.db import get_session, make_engine, upgrade

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
OPENAPI_PATH = SHARED / "max-bot-api" / "openapi.yaml"
TEST_PASSWORD = "correct-horse-battery"


CLOCK_SHIFT_DAYS = int(os.environ.get("MIGRATOR_TEST_CLOCK_SHIFT_DAYS") or 0)

# In CI the property tests draw the same examples on every run (seeded by each test's own
# code), so a red run is the change's doing and replays as it was; a developer's runs keep
# exploring new examples.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config):
    """With ``MIGRATOR_TEST_CLOCK_SHIFT_DAYS=N`` the whole run (and every Python subprocess it
    starts) lives N days in the future, so a test that hard-codes a date fails at once."""
    if CLOCK_SHIFT_DAYS:
        import time_machine

        time_machine.travel(datetime.now(UTC) + timedelta(days=CLOCK_SHIFT_DAYS),
                            tick=True).start()
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "tests" / "clockshift"), os.environ.get("PYTHONPATH")) if p)


def pytest_report_header(config):
    shift = f", clock moved {CLOCK_SHIFT_DAYS} days ahead" if CLOCK_SHIFT_DAYS else ""
    return (f"database: {_db_kind()} ({os.environ.get('TEST_DATABASE_URL') or 'SQLite file'})"
            f"{shift}")


def _db_kind() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def pytest_collection_modifyitems(config, items):
    if _db_kind() == "sqlite":
        skip = pytest.mark.skip(reason="needs PostgreSQL (run with TEST_DATABASE_URL)")
        for item in items:
            if "postgres_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def db_kind() -> str:
    return _db_kind()


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory):
    """Migrate a template database once per session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        engine = make_engine(url)
        with engine.begin() as conn:
            # An extension kept in public (pg_trgm) would be dropped with it, and with it
            # every index of other schemas built on its operators (the benchmarks' schemas
            # in the same database): it moves to a schema of its own first.
            conn.exec_driver_sql(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm' AND n.nspname = 'public')"
                " THEN CREATE SCHEMA IF NOT EXISTS extensions; "
                "ALTER EXTENSION pg_trgm SET SCHEMA extensions; END IF; END $$")
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
        upgrade(url)
        return {"kind": "postgresql", "url": url}
    template = tmp_path_factory.mktemp("db") / "template.db"
    url = f"sqlite:///{template}"
    upgrade(url)
    with sqlite3.connect(template) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"kind": "sqlite", "template": template}


# Empty every table and restart every sequence in one round trip: plain DELETEs are much
# cheaper than TRUNCATE on tables this small. Replica mode lifts the foreign keys and the audit
# table's append-only triggers for the reset only. Tables made at run time (the scheduler's job
# store) are found each time.
_PG_RESET_SQL = """
SET LOCAL session_replication_role = replica;
DO $$
DECLARE t text;
BEGIN
  FOR t IN SELECT tablename FROM pg_tables
           WHERE schemaname = 'public' AND tablename <> 'alembic_version' LOOP
    EXECUTE format('DELETE FROM %%I', t);  -- %% for the driver's placeholders
  END LOOP;
  PERFORM setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'S' AND n.nspname = 'public';
END $$;
INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '""" + "0" * 64 + """');
"""
_PG_ENGINES: dict[str, sa.Engine] = {}


def _pg_reset(url: str) -> None:
    """Empty the database through one connection kept for the whole run."""
    engine = _PG_ENGINES.get(url)
    if engine is None:
        engine = _PG_ENGINES[url] = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        conn.exec_driver_sql(_PG_RESET_SQL)


@pytest.fixture
def database_url(_migrated, tmp_path) -> str:
    """A URL of an empty, migrated database for this test."""
    if _migrated["kind"] == "postgresql":
        _pg_reset(_migrated["url"])
        return _migrated["url"]
    path = tmp_path / "migrator.db"
    shutil.copy(_migrated["template"], path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(database_url, tmp_path) -> dict:
    """Settings for the test app; tests may change them before using ``app``."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-0123456789",
        "WTF_CSRF_ENABLED": False,
        "MAX_API_URL": "http://127.0.0.1:9",  # nothing listens: tests that need Max start one
        "MAX_BOT_TOKEN": "test-bot-token-secret",
        "MAX_BOT_USERNAME": "migrator_test_bot",
        "MAX_WEBHOOK_SECRET": "test-webhook-secret",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": 9,
        "MIGRATOR_BASE_URL": "http://127.0.0.1:5000",
        "SERVER_NAME": None,
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    yield app
    app.extensions["migrator.engine"].dispose()


@pytest.fixture
def ctx(app):
    """An application context with a database session (``get_session()``)."""
    with app.app_context():
        yield get_session()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_counter = itertools.count(1)


@pytest.fixture
def make_org(ctx):
    from migrator.org.service import save_organisation

    def make(code=None, name=None, parent=None, head_email=None):
        n = next(_counter)
        org = save_organisation(code or f"ORG{n}", name or f"Организация {n}",
                                parent.code if parent is not None else None,
                                head_email or f"head{n}@example.org")
        ctx.commit()
        return org

    return make


@pytest.fixture
def make_employee(ctx):
    from migrator.people.models import Employee

    def make(org, email=None, full_name=None, max_user_id=None, **kw):
        n = next(_counter)
        emp = Employee(email=email or f"person{n}@example.org",
                       full_name=full_name or f"Сотрудник {n}", org_id=org.id,
                       max_user_id=max_user_id, **kw)
        ctx.add(emp)
        ctx.commit()
        return emp

    return make


@pytest.fixture
def make_group(ctx):
    from migrator.groups.models import GroupMember, SourceGroup
    from migrator.groups.states import linked_state_for

    def make(org, key=None, platform="whatsapp", members=(), name=None):
        n = next(_counter)
        group = SourceGroup(key=key or f"grp-{n}", name=name or f"Группа {n}", platform=platform,
                            org_id=org.id, member_count=len(members))
        ctx.add(group)
        ctx.flush()
        for emp in members:
            ctx.add(GroupMember(group_id=group.id, employee_id=emp.id,
                                state=linked_state_for(emp.max_user_id)))
        ctx.commit()
        return group

    return make


@pytest.fixture
def make_user(ctx):
    from migrator.auth.service import create_user

    def make(role="admin", orgs=(), email=None, password=TEST_PASSWORD):
        n = next(_counter)
        user = create_user(email or f"user{n}@example.org", password, role,
                           [o.code for o in orgs])
        ctx.commit()
        return user

    return make


@pytest.fixture
def login():
    """``login(client, user)`` signs the test client in through the real login form."""

    def do_login(client, user, password=TEST_PASSWORD):
        resp = client.post("/login", data={"email": user.email, "password": password})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        return client

    return do_login


@pytest.fixture
def api_token(ctx):
    from migrator.auth.service import create_api_token

    def make(user):
        token = create_api_token(user)
        ctx.commit()
        return {"Authorization": f"Bearer {token}"}

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free port (for browsers and webhooks)."""
    server = LiveServer(app).start()
    app.config["MIGRATOR_BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openapi_spec_path() -> Path:
    """The official Max Bot API schema; CI must have it, elsewhere tests skip without it."""
    if not OPENAPI_PATH.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the Max Bot API schema is missing at {OPENAPI_PATH}")
        pytest.skip("the Max Bot API schema (../shared/max-bot-api/openapi.yaml) is absent")
    return OPENAPI_PATH


@pytest.fixture
def smtp_server(app):
    """A running real SMTP server (aiosmtpd); the app's SMTP_HOST/PORT point at it."""
    from smtp_helpers import SmtpSink

    sink = SmtpSink().start()
    app.config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port,
                      MAIL_FROM="Migrator <migrator@region.example>")
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def sandbox_server():
    """One Max sandbox over HTTP for the whole run (token ``SANDBOX_TOKEN``, quick webhook
    retries); each test gets it empty through the ``sandbox`` fixture."""
    from enginetest import SANDBOX_BOT, SANDBOX_TOKEN

    from migrator.sandbox import create_sandbox_app, run_in_thread
    from migrator.sandbox.state import SandboxState

    state = SandboxState(bot_username=SANDBOX_BOT, webhook_retry_base=0.2, webhook_retry_cap=1.0)
    handle = run_in_thread(create_sandbox_app(token=SANDBOX_TOKEN, rps=None, state=state,
                                                 dev_webhooks=True))
    yield handle
    handle.shutdown()


@pytest.fixture
def shared_sandbox(sandbox_server):
    """The shared sandbox, reset (no users, chats, subscriptions, faults or logs), as its
    control client (:class:`enginetest.SandboxCtl`); the app is not pointed at it."""
    from enginetest import SandboxCtl

    ctl = SandboxCtl(sandbox_server)
    ctl.reset()
    yield ctl
    ctl.reset()  # no webhook deliveries to this test's server once it is gone
    ctl.close()


@pytest.fixture
def sandbox(shared_sandbox, app_config):
    """The shared sandbox, reset, with the app's MAX_API_URL and bot pointed at it (request it
    before ``app``)."""
    from enginetest import SANDBOX_BOT, SANDBOX_TOKEN

    app_config.update(MAX_API_URL=shared_sandbox.url, MAX_BOT_TOKEN=SANDBOX_TOKEN,
                      MAX_BOT_USERNAME=SANDBOX_BOT,
                      RUNNER_BACKOFF_SECONDS=0,  # retries due at once in tests
                      MEMBER_BACKOFF_SECONDS=0)
    return shared_sandbox
