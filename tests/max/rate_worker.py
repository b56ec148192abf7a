"""A separate OS process hammering the sandbox through a client with a DatabaseLimiter.

Usage: python rate_worker.py BASE_URL TOKEN SECONDS DB_URL BUCKET
Prints "ready" once set up, reads the common start time (time.time()) from stdin, then
prints one JSON line: {"calls": n, "errors": [...], "limited": n}.
"""

from __future__ import annotations

import json
import sys
import time

import sqlalchemy as sa
from sqlalchemy import event


def main() -> None:
    base_url, token, seconds, db_url, bucket = sys.argv[1:6]
    from migrator.max.client import MaxClient
    from migrator.max.errors import MaxError, MaxRateLimited
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
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + float(seconds)
    calls, errors, limited = 0, [], 0
    while time.time() < deadline:
        try:
            client.get_me()
            calls += 1
        except MaxRateLimited:
            limited += 1  # injected by the test: the back-off is shared
        except MaxError as exc:
            errors.append(str(exc))
    client.close()
    engine.dispose()
    print(json.dumps({"calls": calls, "errors": errors, "limited": limited}))


if __name__ == "__main__":
    main()
