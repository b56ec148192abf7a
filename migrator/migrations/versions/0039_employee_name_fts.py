"""people: SQLite full-text index for the employee search (trigram FTS5)

Revision ID: 0039
Revises: 0037

SQLite only (PostgreSQL keeps the trigram GIN indexes of migration 0009):

- ``employee_fts``: an FTS5 table with the ``trigram`` tokenizer over ``employee.full_name``,
  its content read from ``employee`` (external content, ``rowid`` = ``employee.id``). It
  finds the names that contain a text of three characters or more, in any case (it folds
  Cyrillic as well as Latin), without reading every row. The search uses it to narrow the
  rows down and still applies its ``LIKE`` conditions to them, so the results are the same.
- Three triggers keep it in step with every write to ``employee`` (ORM, bulk imports, the
  demo seeder, plain SQL). A statement that writes many rows should be one multi-row
  statement (``migrator.db.bulk_insert`` does that): FTS5 flushes its pending entries at
  each statement that fires a trigger, and a statement per row is several times slower.
- ``ix_employee_email_nocase`` on ``email COLLATE NOCASE``: it serves the other half of the
  search, ``email LIKE 'text%'`` (SQLite's case-insensitive ``LIKE`` can use only a NOCASE
  index).

SQLite without FTS5 or without the trigram tokenizer (before 3.34) gets neither table nor
triggers; the search then stays a scan. A later migration that rebuilds ``employee`` (a
batch-mode table copy) drops the triggers: it must create them again (``TRIGGERS``).
"""
import sqlalchemy as sa
from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

FTS_TABLE = "employee_fts"
CREATE_TABLE = (f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(full_name, content='employee', "
                "content_rowid='id', tokenize='trigram')")
TRIGGERS = {
    "employee_fts_insert": f"""
CREATE TRIGGER employee_fts_insert AFTER INSERT ON employee BEGIN
  INSERT INTO {FTS_TABLE} (rowid, full_name) VALUES (new.id, new.full_name);
END""",
    "employee_fts_delete": f"""
CREATE TRIGGER employee_fts_delete AFTER DELETE ON employee BEGIN
  INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, full_name) VALUES ('delete', old.id, old.full_name);
END""",
    # Only a real change of the name: the imports set full_name on every changed row.
    "employee_fts_update": f"""
CREATE TRIGGER employee_fts_update AFTER UPDATE OF id, full_name ON employee
WHEN old.id IS NOT new.id OR old.full_name IS NOT new.full_name BEGIN
  INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, full_name) VALUES ('delete', old.id, old.full_name);
  INSERT INTO {FTS_TABLE} (rowid, full_name) VALUES (new.id, new.full_name);
END""",
}
EMAIL_INDEX = "ix_employee_email_nocase"


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    op.execute(f"CREATE INDEX {EMAIL_INDEX} ON employee (email COLLATE NOCASE)")
    try:
        with conn.begin_nested():  # no FTS5 or no trigram tokenizer: no index, same results
            conn.exec_driver_sql(CREATE_TABLE)
    except sa.exc.OperationalError:
        return
    for sql in TRIGGERS.values():
        op.execute(sql)
    op.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.execute(f"DROP INDEX IF EXISTS {EMAIL_INDEX}")
