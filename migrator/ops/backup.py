"""Consistent backups and restores of the whole database.

* SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent
  snapshot while the app keeps running; the backup is itself an SQLite database file.
* PostgreSQL: ``pg_dump --format=custom`` (one transaction, so consistent while the app
  runs) and ``pg_restore --single-transaction`` (all or nothing). Debian's
  ``postgresql-client`` must match the server's major version or be newer.

A restore goes into an empty database (no tables, or only an empty migrated schema); a
database holding data is refused unless ``force`` is given.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from migrator.config import environment
from migrator.db import is_sqlite

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# Tables a freshly migrated database already fills, or that hold only transient rows.
BOOKKEEPING = {"alembic_version", "audit_head", "apscheduler_jobs", "heartbeat", "max_rate_hit"}


class BackupError(RuntimeError):
    """The backup or restore could not be done; nothing was changed."""


def data_tables_with_rows(engine: Engine) -> list[str]:
    """The tables (bookkeeping ones and full-text indexes aside) that hold at least one row."""
    names = sa.inspect(engine).get_table_names()
    full = []
    with engine.connect() as conn:
        indexes = _fts_tables(conn) if is_sqlite(engine) else set()
        for name in sorted(set(names) - BOOKKEEPING - indexes):
            table = sa.table(name)
            if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                full.append(name)
    return full


def _fts_tables(conn) -> set[str]:
    """SQLite's full-text index tables and their shadow tables (an empty one holds rows of
    its own settings): they mirror the rows of another table."""
    virtual = [name for (name,) in conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")]
    return {*virtual, *(f"{v}_{shadow}" for v in virtual
                        for shadow in ("data", "idx", "docsize", "config", "content"))}


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    """``--dbname`` for the PostgreSQL tools, the password in the environment (not argv)."""
    u = make_url(url)
    env = environment()
    if u.password:
        env["PGPASSWORD"] = u.password
    u = u.set(drivername="postgresql", password=None)
    return ["--dbname", u.render_as_string(hide_password=False)], env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BackupError(f"{cmd[0]} is not installed (Debian: apt-get install "
                          "postgresql-client)") from exc
    if done.returncode != 0:
        raise BackupError(f"{cmd[0]} failed: {done.stderr.strip()[:2000]}")


def create(url: str, target: str | Path) -> str:
    """Write a consistent snapshot of the database at ``url`` to ``target``; its kind."""
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file name")
    tmp = target.with_name(target.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        if is_sqlite(url):
            source = _sqlite_path(url)
            if not source.exists():
                raise BackupError(f"the database file {source} does not exist")
            with sqlite3.connect(source) as src, sqlite3.connect(tmp) as dst:
                src.backup(dst)
            kind = "sqlite"
        else:
            dbname, env = _pg_args(url)
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                  "--file", str(tmp), *dbname], env)
            kind = "postgresql"
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return kind


def backup_kind(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither an SQLite database nor a pg_dump custom archive")


def _check_sqlite_backup(path: Path) -> None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    if "alembic_version" not in tables:
        raise BackupError(f"{path} is not a Migrator database (no alembic_version table)")


def restore(url: str, source: str | Path, engine: Engine, *, force: bool = False) -> str:
    """Restore the backup ``source`` into the database at ``url`` (``engine`` is the app's
    engine on it, disposed of before the files change)."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    kind = backup_kind(source)
    target_kind = "sqlite" if is_sqlite(url) else "postgresql"
    if kind != target_kind:
        raise BackupError(f"{source} is a {kind} backup; the database is {target_kind}")
    if kind == "sqlite":
        _check_sqlite_backup(source)
    full = data_tables_with_rows(engine) if _exists(url) else []
    if full and not force:
        raise BackupError("the database is not empty (" + ", ".join(full[:5])
                          + (", …" if len(full) > 5 else "")
                          + "): restore into an empty database, or pass --force to replace it")
    engine.dispose()
    if kind == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        # the backup API replaces the whole target database in one locked step
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, \
                sqlite3.connect(target, timeout=30) as dst:
            src.backup(dst)
    else:
        dbname, env = _pg_args(url)
        _run(["pg_restore", "--clean", "--if-exists", "--single-transaction", "--no-owner",
              "--no-privileges", *dbname, str(source)], env)
    return kind


def _exists(url: str) -> bool:
    return not is_sqlite(url) or _sqlite_path(url).exists()
