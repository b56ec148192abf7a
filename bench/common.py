"""What the benchmarks share: the PostgreSQL URL of the bench and its scratch schemas."""

from __future__ import annotations

import os
from urllib.parse import quote

# ``BENCH_DATABASE_URL`` names the PostgreSQL database; the benches work in their own schemas
# (``bench_small``, ``bench_region``, ``bench_import``) and never touch ``public``.
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def bench_pg_base() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)


def pg_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def _connect(base: str, **kwargs):
    import psycopg

    return psycopg.connect(base.replace("+psycopg", ""), **kwargs)


def pg_reachable(base: str) -> bool:
    try:
        _connect(base, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001
        return False


def ensure_pg_schema(base: str, schema: str) -> None:
    with _connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def reset_pg_schema(base: str, schema: str) -> None:
    with _connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
