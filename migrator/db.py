"""Database engine, the per-context session, portable column types and the ``db`` CLI.

One engine per app (``app.extensions["migrator.engine"]``); one session per application
context (a request, a CLI command, a scheduler job), closed at teardown.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored as naive UTC and always returned timezone-aware (UTC).

    SQLite keeps no offsets, so every datetime is normalised to UTC on the way in.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # defensive: raw SQLite text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


def is_sqlite(engine_or_url) -> bool:
    url = getattr(engine_or_url, "url", engine_or_url)
    return str(url).startswith("sqlite")


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = sa.create_engine(url, **kwargs)
        _sqlite_setup(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
    engine = sa.create_engine(url, **kwargs)
    _postgres_setup(engine)
    return engine


def _postgres_setup(engine: Engine) -> None:
    # No JIT compilation: every query here is short, and a plan whose cost is overestimated
    # (an OR of two subqueries, as in "the chats of a scope") crossed the JIT thresholds and
    # spent about 300 ms compiling a query that runs in 3 ms.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        with dbapi_conn.cursor() as cur:
            cur.execute("SET jit = off")
        dbapi_conn.commit()


def _sqlite_setup(engine: Engine) -> None:
    # pysqlite's own transaction handling is turned off so that every transaction starts
    # with BEGIN IMMEDIATE: several processes (web, scheduler, runners) then queue for the
    # write lock instead of failing with "database is locked" when upgrading a read lock.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions["migrator.engine"]


def get_session() -> Session:
    """The session of the current application context, created on first use."""
    if "db_session" not in g:
        g.db_session = Session(get_engine(), expire_on_commit=False)
    return g.db_session


def close_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def claim(session: Session, query, take, *, of=None) -> list:
    """Claim the rows of ``query`` (a SELECT of due rows, ordered and limited): ``take(row)``
    marks each one as taken (a lease), and the claim is committed before any work starts.

    Several claimers share the work safely: on PostgreSQL the rows are read ``FOR UPDATE
    SKIP LOCKED`` (of ``of``, default the selected table), so two claimers never get the
    same row; on SQLite every transaction starts with ``BEGIN IMMEDIATE``, and the write
    lock serialises claimers. The steps of the engine and the outboxes are claimed here.
    """
    if not is_sqlite(session.get_bind()):
        query = query.with_for_update(skip_locked=True, of=of)
    try:
        rows = list(session.scalars(query))
        for row in rows:
            take(row)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return rows


class not_driving(sa.sql.functions.GenericFunction):  # noqa: N801 (used like a SQL function)
    """``column`` in a join condition, marked so that SQLite does not drive the join from an
    index on it: ``+column`` on SQLite (the documented way to disqualify an index), the
    column itself elsewhere. For joins such as "steps that are overdue, with their group",
    where SQLite's planner (which knows nothing about ranges of ``due_at``) would otherwise
    walk every group and look its steps up, instead of reading the few matching steps.
    """

    inherit_cache = True
    type = sa.Integer()


@compiles(not_driving)
def _not_driving(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(not_driving, "sqlite")
def _not_driving_sqlite(element, compiler, **kw):
    return "+" + compiler.process(element.clauses, **kw)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@click.group("db")
def db_cli():
    """Database schema commands."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str):
    """Create or upgrade the schema to REVISION (default: the head)."""
    url = current_app.config["DATABASE_URL"]
    upgrade(url, revision)
    click.echo(f"Database is at revision {revision}.")


def init_app(app: Flask) -> None:
    """The engine and the session teardown; the app factory registers the tables
    (:mod:`migrator.models`), so that this module imports no feature."""
    app.extensions["migrator.engine"] = make_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(close_session)
    app.cli.add_command(db_cli)


# --- bulk writes --------------------------------------------------------------------------------

BULK_BATCH = 20_000
BULK_ROWS_PER_STATEMENT = 5_000  # SQLite: rows of one multi-row statement (at most)


def _copy_value(value):
    """A value as COPY takes it: datetimes as naive UTC (what ``UTCDateTime`` stores)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: list[dict] | list[tuple],
                columns: list[str] | None = None, constants: dict | None = None) -> None:
    """Append rows to ``table`` inside ``conn``'s transaction: COPY on PostgreSQL,
    multi-row ``INSERT`` statements on SQLite. No ORM objects.

    ``rows`` are dicts with the same keys, or tuples in the order of ``columns``;
    ``constants`` gives the columns that have one value in every row (bound once)."""
    if not rows:
        return
    if columns is None:
        columns = list(rows[0])
        rows = [tuple(r[c] for c in columns) for r in rows]
    constants = constants or {}
    cols = [*columns, *constants]
    if conn.dialect.name != "postgresql":
        _sqlite_insert(conn, table, cols, rows, list(constants.values()))
        return
    fixed = tuple(_copy_value(v) for v in constants.values())
    convert = [i for i, c in enumerate(columns)
               if isinstance(table.c[c].type, sa.DateTime | UTCDateTime)]
    names = ", ".join(f'"{c}"' for c in cols)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            if convert:
                row = list(row)
                for i in convert:
                    row[i] = _copy_value(row[i])
                row = tuple(row)
            copy.write_row(row + fixed)


def _sqlite_insert(conn: sa.Connection, table: sa.Table, cols: list[str], rows: list[tuple],
                   constants: list) -> None:
    """Multi-row ``INSERT ... VALUES (...), (...)`` statements on the DBAPI cursor of ``conn``
    (same transaction), with a page cache large enough for the indexes of a big append."""
    names = ", ".join(f'"{c}"' for c in cols)
    _sqlite_statements(conn, table, cols, rows, constants,
                       lambda values: f'INSERT INTO "{table.name}" ({names}) VALUES {values}')


def _sqlite_statements(conn: sa.Connection, table: sa.Table, cols: list[str], rows: list[tuple],
                       constants: list, sql) -> None:
    """Run ``sql(values)`` for the rows, ``values`` being ``(?, ...), (?, ...)`` for as many
    rows as SQLite's limit on parameters allows, with each column's bind conversion
    (datetimes, booleans) applied once per distinct value; constants are bound with each row.

    One statement per many rows rather than ``executemany`` (one per row): a trigger that
    writes to an FTS5 index (``employee_fts``, migration 0039) makes FTS5 flush its pending
    entries at every statement, which per row costs several times the write itself."""
    n = len(cols) - len(constants)
    procs = [(i, table.c[c].type._cached_bind_processor(conn.dialect), {})
             for i, c in enumerate(cols[:n])]
    procs = [(i, fn, memo) for i, fn, memo in procs if fn is not None]
    fixed = tuple(None if v is None else (table.c[c].type._cached_bind_processor(conn.dialect)
                                          or (lambda x: x))(v)
                  for c, v in zip(cols[n:], constants, strict=True))
    one_row = f"({', '.join('?' * len(cols))})"

    def convert(row: tuple) -> tuple:
        row = list(row)
        for i, fn, memo in procs:
            value = row[i]
            if value is not None:
                if value not in memo:
                    memo[value] = fn(value)
                row[i] = memo[value]
        return tuple(row) + fixed

    raw = conn.connection.driver_connection
    per = max(1, min(BULK_ROWS_PER_STATEMENT,
                     raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(cols)))
    full = sql(", ".join([one_row] * per))
    cursor = raw.cursor()
    try:
        cache = cursor.execute("PRAGMA cache_size").fetchone()[0]
        # 32 MiB while appending: a region's 300,000 memberships (into an empty table or one
        # already holding as many) go in as fast as with 128 MiB, and 40 MB less resident
        cursor.execute("PRAGMA cache_size = -32768")
        for i in range(0, len(rows), per):
            batch = rows[i:i + per]
            params = [v for r in batch for v in (convert(r) if procs else r + fixed)]
            cursor.execute(full if len(batch) == per else sql(", ".join([one_row] * len(batch))),
                           params)
        cursor.execute(f"PRAGMA cache_size = {int(cache)}")
    finally:
        cursor.close()


def bulk_update(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Update rows of ``table`` by id: each dict holds ``id`` and the columns to set (the
    same keys in every dict). On SQLite, multi-row ``UPDATE ... FROM (VALUES ...)``
    statements (SQLite 3.33 or later); elsewhere one ``executemany`` per batch."""
    if not rows:
        return
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 33):
        cols = list(rows[0])
        sets = ", ".join(f'"{c}" = v.column{i + 1}' for i, c in enumerate(cols) if c != "id")
        key = f"column{cols.index('id') + 1}"
        _sqlite_statements(
            conn, table, cols, [tuple(r[c] for c in cols) for r in rows], [],
            lambda values: f'UPDATE "{table.name}" SET {sets} FROM (VALUES {values}) AS v '
                           f'WHERE "{table.name}".id = v.{key}')
        return
    stmt = table.update().where(table.c.id == sa.bindparam("b_id"))
    params = [{"b_id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in rows]
    for i in range(0, len(params), BULK_BATCH):
        conn.execute(stmt, params[i:i + BULK_BATCH])


def next_ids(conn: sa.Connection, table: sa.Table, n: int) -> list[int]:
    """Reserve ``n`` ids of ``table``: from its sequence on PostgreSQL; on SQLite above the
    current maximum (the import's write transaction holds the database's write lock)."""
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        return list(conn.execute(sa.text(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            "FROM generate_series(1, :n)"), {"n": n}).scalars())
    start = (conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1
    return list(range(start, start + n))
