"""people: indexes for the employee search (trigram GIN on PostgreSQL, name order everywhere)

Revision ID: 0009
Revises: 0008

- ``ix_employee_full_name`` on ``(full_name, email)`` (every database): the list is ordered
  by name by default, so a search's first page walks this index, testing both columns in the
  index itself, and stops after a page of matches instead of sorting every match.
- PostgreSQL only, when the ``pg_trgm`` extension is available (created here if missing and
  allowed, in the schema ``extensions``): GIN trigram indexes on ``employee.full_name`` and ``employee.email`` that serve
  ``full_name ILIKE '%q%'`` and ``email LIKE 'q%'``. Without the extension the search still
  works, as a scan.
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TRGM_INDEXES = (("ix_employee_full_name_trgm", "full_name"), ("ix_employee_email_trgm", "email"))


def _trgm_schema(conn) -> str | None:
    """The schema of the pg_trgm extension, creating it when available; None without it."""
    schema = conn.scalar(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"))
    if schema:
        return schema
    available = conn.scalar(sa.text(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'"))
    if not available:
        return None
    # In a schema of its own: dropping an application schema (a restore, a test run's reset)
    # must not take the extension, and with it every trigram index of the database, along.
    for statements in (("CREATE SCHEMA IF NOT EXISTS extensions",
                        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA extensions"),
                       ("CREATE EXTENSION IF NOT EXISTS pg_trgm",)):
        try:
            with conn.begin_nested():  # a refused statement must not abort the migration
                for statement in statements:
                    conn.execute(sa.text(statement))
            break
        except sa.exc.DBAPIError:
            continue
    else:
        return None
    return conn.scalar(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"))


def upgrade() -> None:
    op.create_index("ix_employee_full_name", "employee", ["full_name", "email"])
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    schema = _trgm_schema(conn)
    if schema is None:
        return
    # The operator class is schema-qualified: the extension may live in another schema
    # than the one on the search path (it is installed once per database).
    opclass = f'"{schema}".gin_trgm_ops'
    for name, column in TRGM_INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON employee USING gin ({column} {opclass})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _column in TRGM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_employee_full_name", table_name="employee")
