"""Throughput: does the runner keep the shared rate limiter busy?

Enough due work for the whole window (bot dialog messages, one Max request each) and two
``flask run-due --loop`` processes sharing the limiter through the database, against the
Max sandbox counting requests per second as Max does (30 requests/s; above that it answers
429). Reported over the steady part of the window: the achieved rate, its ratio to the
limiter's capacity (``MAX_RPS``), the busiest second as the server counted it, and the 429s
the runners brought on themselves (none is the target; the capacity target is ≥ 28.5/s).

Run: ``.venv/bin/python bench/throughput.py [--seconds 60] [--runners 2] [--db sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    BENCH_SECRET_KEY,
    SANDBOX_BOT,
    SANDBOX_TOKEN,
    sandbox_in_thread,
    scratch_database,
    start_runners,
    stop_runners,
)

WARMUP_S = 3.0  # the processes start and claim their first batches


def _queue(url: str, users: list[int], messages: int) -> None:
    from migrator import create_app
    from migrator.db import get_session
    from migrator.people.invites import queue_bot_message

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": BENCH_SECRET_KEY})
    with app.app_context():
        for n in range(messages):
            queue_bot_message(f"bench:{n}", users[n % len(users)],
                              f"Сообщение стенда № {n}")
            if n % 500 == 499:
                get_session().commit()
        get_session().commit()


def run(db: str, seconds: float, runners: int, rps: int) -> dict:

    url = scratch_database(db, "bench_rate")
    handle, sandbox = sandbox_in_thread()
    users = [sandbox.create_user(f"Сотрудник {i}")["user_id"] for i in range(200)]
    for uid in users:
        sandbox.start(uid)  # a dialog with the bot exists
    _queue(url, users, int(seconds * rps * 1.5) + 200)
    sandbox.clear_request_log()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": BENCH_SECRET_KEY,
           "MAX_API_URL": handle.url, "MAX_BOT_TOKEN": SANDBOX_TOKEN,
           "MAX_BOT_USERNAME": SANDBOX_BOT,
           "MAX_RPS": str(rps), "LOG_LEVEL": "WARNING"}
    procs = start_runners(env, runners, "0.2")
    began = time.time()
    try:
        time.sleep(seconds)
    finally:
        stop_runners(procs)
    log = [r for r in sandbox.request_log() if r["path"].startswith("/messages")]
    handle.shutdown()
    start, end = began + WARMUP_S, began + seconds - 1
    steady = [r for r in log if start <= r["at"] < end]
    per_second = collections.Counter(int(r["at"]) for r in log)
    ok = [r for r in steady if r["status"] == 200]
    throttled = [r for r in log if r["status"] == 429 and not r.get("fault")]
    rate = len(ok) / (end - start)
    return {"db": db, "seconds": seconds, "runners": runners, "capacity": rps,
            "sent": len([r for r in log if r["status"] == 200]), "rate": rate,
            "ratio": rate / rps, "busiest": max(per_second.values(), default=0),
            "throttled": len(throttled)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--rps", type=int, default=30, help="the limiter's capacity (MAX_RPS)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    r = run(args.db, args.seconds, args.runners, args.rps)
    print(f"{'database':<11}{'seconds':>8}{'runners':>8}{'capacity':>9}{'sent':>7}"
          f"{'req/s':>8}{'ratio':>7}{'busiest s':>10}{'own 429s':>9}")
    print(f"{r['db']:<11}{r['seconds']:>8.0f}{r['runners']:>8}{r['capacity']:>9}{r['sent']:>7}"
          f"{r['rate']:>8.2f}{r['ratio']:>7.2f}{r['busiest']:>10}{r['throttled']:>9}")
    return 0 if r["ratio"] >= 0.95 and r["throttled"] == 0 and r["busiest"] <= 30 else 1


if __name__ == "__main__":
    raise SystemExit(main())
