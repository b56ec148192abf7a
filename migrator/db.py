"""Database engine, the per-context session, portable column types and the ``db`` CLI.

One engine per app (``app.extensions["migrator.engine"]``); one session per application
context (a request, a CLI command, a scheduler job), closed at teardown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine
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
    return sa.create_engine(url, **kwargs)


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
