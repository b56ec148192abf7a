"""A separate OS process hammering the sandbox through a client with a DatabaseLimiter.

Usage: python rate_worker.py DB_URL BUCKET BASE_URL TOKEN START_AT SECONDS
Prints one JSON line: {"calls": n, "errors": [...]}.
"""

from __future__ import annotations

import json
import sys
import time

import sqlalchemy as sa
from sqlalchemy import event


def main() -> None:
    db_url, bucket, base_url, token, start_at, seconds = sys.argv[1:7]
    from migrator.max.client import MaxClient
    from migrator.max.errors import MaxError
    from migrator.max.ratelimit import DatabaseLimiter

    if db_url.startswith("sqlite"):
        engine = sa.create_engine(db_url, connect_args={"timeout": 30})

        # the app's own SQLite setup: pysqlite's transaction handling off
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

    else:
        engine = sa.create_engine(db_url)
    limiter = DatabaseLimiter(engine, bucket, 30)
    client = MaxClient(base_url, token, limiter=limiter, max_retries=0)
    limiter.acquire()  # warm up the connection pool before the common start
    time.sleep(max(0.0, float(start_at) - time.time()))
    deadline = float(start_at) + float(seconds)
    calls, errors = 0, []
    while time.time() < deadline:
        try:
            client.get_me()
            calls += 1
        except MaxError as exc:
            errors.append(str(exc))
    client.close()
    engine.dispose()
    print(json.dumps({"calls": calls, "errors": errors}))


if __name__ == "__main__":
    main()
