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


# --- the Max benches: a scratch database and a sandbox in this process -------------------

SANDBOX_TOKEN = "bench-bot-token-0123456789"  # noqa: S105 - a sandbox token
SANDBOX_BOT = "bench_bot"
BENCH_SECRET_KEY = "bench-secret-key-" + "x9" * 20  # noqa: S105


def scratch_database(db: str, name: str) -> str:
    """An empty database at the schema's head: a fresh SQLite file, or the PostgreSQL
    schema ``name`` of ``BENCH_DATABASE_URL`` dropped and made anew."""
    import tempfile

    from migrator.db import upgrade

    if db == "postgresql":
        base = bench_pg_base()
        reset_pg_schema(base, name)
        url = pg_url(base, name)
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix=f'{name}-')}/bench.db"
    upgrade(url)
    return url


def sandbox_in_thread():
    """``(server handle, control client)`` of a Max sandbox answering at 30 requests/s."""
    from migrator.sandbox import create_sandbox_app, run_in_thread
    from migrator.sandbox.client import SandboxControl
    from migrator.sandbox.state import SandboxState

    handle = run_in_thread(create_sandbox_app(
        token=SANDBOX_TOKEN, rps=30, state=SandboxState(bot_username=SANDBOX_BOT),
        dev_webhooks=True))
    return handle, SandboxControl(handle.url)


def start_runners(env: dict, count: int, loop: str) -> list:
    """``count`` ``flask run-due --loop LOOP`` processes of this checkout, output discarded."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    return [subprocess.Popen(  # noqa: S603 - our own CLI
        [str(root / ".venv" / "bin" / "flask"), "--app", "app", "run-due", "--loop", loop],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)]


def stop_runners(procs: list) -> None:
    """SIGTERM, then SIGKILL whatever has not stopped within 20 s."""
    import signal
    import subprocess

    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
