"""Helpers for the audit tests: raw SQL that lifts the append-only triggers, like a superuser."""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from migrator.db import make_engine


@contextmanager
def triggers_lifted(database_url: str):
    """A connection on which UPDATE/DELETE of audit_event are possible (then restored)."""
    engine = make_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                yield conn
            else:
                saved = conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name = 'audit_event'").all()
                assert saved, "the append-only triggers are missing"
                for name, _sql in saved:
                    conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
                yield conn
                for _name, sql in saved:
                    conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def raw_engine(database_url: str):
    return make_engine(database_url, poolclass=sa.pool.NullPool)
