"""The connections the app opens are set up for short web queries on both databases."""

from __future__ import annotations

import sqlalchemy as sa

from migrator.db import get_engine


def test_connections_are_set_up_for_short_queries(ctx, db_kind):
    engine = get_engine()
    with engine.connect() as conn:
        if db_kind == "postgresql":
            # JIT compilation cost ~300 ms on plans whose cost was overestimated.
            assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
        else:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # Every pooled connection, not only the first one.
    conns = [engine.connect() for _ in range(3)]
    try:
        for conn in conns:
            if db_kind == "postgresql":
                assert conn.execute(sa.text("SHOW jit")).scalar() == "off"
    finally:
        for conn in conns:
            conn.close()
