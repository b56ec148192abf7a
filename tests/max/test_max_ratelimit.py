"""Rate limiters: a sliding-window guarantee, in one process and across OS processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from maxtest_support import REPO_ROOT, TOKEN

from migrator.max.ratelimit import DatabaseLimiter, MaxRateHit, MemoryLimiter, bucket_key

WORKER = Path(__file__).with_name("rate_worker.py")
PG_URL = os.environ.get("TEST_DATABASE_URL", "")


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most timestamps found in any half-open window [t, t + window)."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_max_in_window_counts_sliding_not_aligned_windows():
    # 10 at the end of one second and 10 at the start of the next: 20 in a sliding second
    times = [0.9 + i * 0.005 for i in range(10)] + [1.0 + i * 0.005 for i in range(10)]
    assert max_in_window(times) == 20
    assert max_in_window([0.0, 1.0, 2.0]) == 1


def test_memory_limiter_holds_any_sliding_window_across_threads():
    limiter = MemoryLimiter(20)
    stamps: list[float] = []
    lock = threading.Lock()

    def work():
        for _ in range(15):
            limiter.acquire()
            with lock:
                stamps.append(time.time())

    threads = [threading.Thread(target=work) for _ in range(3)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 45
    assert max_in_window(stamps, 1.0) <= 20
    assert time.time() - started >= 2.0  # 45 at 20 per 1.1 s needs two full windows


def test_database_limiter_stores_only_a_hash_of_the_label(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rl.db'}")
    MaxRateHit.__table__.create(engine)
    limiter = DatabaseLimiter(engine, TOKEN, 5)
    for _ in range(5):
        limiter.acquire()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(MaxRateHit.__table__.c.bucket)).scalars().all()
    assert rows == [bucket_key(TOKEN)] * 5
    assert TOKEN not in repr(limiter)
    engine.dispose()


def _hammer(make_sandbox, db_url: str, bucket: str, seconds: float = 3.0) -> None:
    sb = make_sandbox(rps=30)
    start_at = time.time() + 2.0  # after both workers imported their modules
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                db_url,
                bucket,
                sb.url,
                TOKEN,
                str(start_at),
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        for _ in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    log = [r for r in sb.requests() if r["at"] >= start_at - 0.5]
    assert all(r["status"] != 429 for r in log), [r for r in log if r["status"] == 429][:3]
    assert all(res["errors"] == [] for res in results), results
    assert all(res["calls"] > 10 for res in results), results  # both really shared the budget
    peak = max_in_window([r["at"] for r in log], 1.0)
    assert peak <= 30, peak
    # the limiter lets work through at close to the allowed rate, not far below it
    assert len(log) >= 0.75 * 30 * seconds, len(log)


@pytest.mark.slow
def test_two_processes_share_the_limit_on_sqlite(make_sandbox, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'ratelimit.db'}"
    engine = sa.create_engine(db_url)
    MaxRateHit.__table__.create(engine)
    engine.dispose()
    _hammer(make_sandbox, db_url, f"test-{uuid.uuid4()}")


@pytest.mark.slow
@pytest.mark.skipif(
    not PG_URL.startswith("postgresql"), reason="set TEST_DATABASE_URL=postgresql+psycopg://..."
)
def test_two_processes_share_the_limit_on_postgresql(make_sandbox):
    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    MaxRateHit.__table__.create(engine, checkfirst=True)
    label = f"test-{uuid.uuid4()}"
    try:
        _hammer(make_sandbox, url, label)
    finally:
        table = MaxRateHit.__table__
        with engine.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.bucket == bucket_key(label)))
        engine.dispose()
