"""``flask backup create|restore``: a round trip on the test's database (SQLite or
PostgreSQL) after which ``audit verify`` passes and every row is back."""

from __future__ import annotations

import sqlalchemy as sa

from migrator.audit.models import AuditEvent
from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_engine, get_session, is_sqlite, make_engine
from migrator.org.models import Organisation


def _counts() -> tuple[int, int]:
    session = get_session()
    session.rollback()
    return (session.scalar(sa.select(sa.func.count()).select_from(Organisation)),
            session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)))


def _empty_the_database(app) -> None:
    """What an operator starts a restore with: a database without any table."""
    url = app.config["DATABASE_URL"]
    get_session().close()
    get_engine().dispose()
    if is_sqlite(url):
        path = sa.engine.make_url(url).database
        for suffix in ("", "-wal", "-shm"):
            __import__("pathlib").Path(path + suffix).unlink(missing_ok=True)
        return
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def test_round_trip_verifies(app, ctx, runner, tmp_path, make_org, make_employee):
    with acting_as(Actor("system", "test", "backup test")):
        for n in range(3):
            org = make_org()
            make_employee(org)
            record("org.created", object_type="organisation", object_id=org.id,
                   org_id=org.id, summary={"n": n})
            ctx.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    orgs, events = _counts()
    assert orgs == 3 and events > 0

    file = tmp_path / "migrator.backup"
    result = runner.invoke(args=["backup", "create", str(file)])
    assert result.exit_code == 0, result.output
    assert file.stat().st_size > 0
    again = runner.invoke(args=["backup", "create", str(file)])  # never overwrites
    assert again.exit_code == 1 and "exists already" in again.output

    # the database holds data: refused, nothing changed
    result = runner.invoke(args=["backup", "restore", str(file)])
    assert result.exit_code == 1 and "not empty" in result.output
    assert _counts() == (3, events + 1)  # the backup itself is in the trail

    _empty_the_database(app)
    result = runner.invoke(args=["backup", "restore", str(file)])
    assert result.exit_code == 0, result.output
    assert _counts() == (3, events + 1)  # the backup's rows and the restore event
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "Audit chain OK" in result.output

    # --force replaces a database that holds data (here: one more organisation)
    make_org()
    assert _counts()[0] == 4
    result = runner.invoke(args=["backup", "restore", "--force", str(file)])
    assert result.exit_code == 0, result.output
    assert _counts()[0] == 3
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


def test_bad_backup_files_change_nothing(app, ctx, runner, tmp_path, make_org):
    make_org()
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all")
    result = runner.invoke(args=["backup", "restore", "--force", str(junk)])
    assert result.exit_code == 1 and "neither" in result.output
    result = runner.invoke(args=["backup", "restore", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert _counts()[0] == 1


def test_a_freshly_migrated_database_counts_as_empty(app, ctx):
    """A restore may go into an empty migrated schema: the rows a migration writes (the
    audit head, the settings of SQLite's full-text index) are not data."""
    from migrator.ops.backup import data_tables_with_rows

    assert data_tables_with_rows(get_engine()) == []
