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
            granted = limiter.acquire()  # the grant's own time: a thread descheduled after
            with lock:  # the grant would skew a clock read here
                stamps.append(granted)

    threads = [threading.Thread(target=work) for _ in range(3)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 45
    assert max_in_window(stamps, 1.0) <= 19  # one request of headroom under the limit
    assert time.time() - started >= 2.0  # 45 at 19 per second needs two full windows


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


def _hammer(make_sandbox, db_url: str, bucket: str, seconds: float = 4.0) -> list[dict]:
    """Two worker processes call ``GET /me`` as fast as the shared limiter lets them."""
    sb = make_sandbox(rps=30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), sb.url, TOKEN, str(seconds), db_url, bucket],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        for _ in range(2)
    ]
    for p in procs:  # both imported their modules and warmed up: start together
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    load = os.getloadavg()[0]
    start_at = time.time() + 0.3
    results = []
    for p in procs:
        p.stdin.write(f"{start_at}\n")
        p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    log = [r for r in sb.requests() if r["at"] >= start_at - 0.05]
    throttled = [r for r in log if r["status"] == 429]
    # A machine so overloaded that the processes (and the server) get little CPU delays
    # requests between the limiter's grant and their arrival by more than the one request
    # of headroom, which no client-side limiter can prevent: there a stray 429 (answered by
    # the shared back-off) is tolerated and the sustained rate is not what is measured.
    overloaded = max(load, os.getloadavg()[0]) > (os.cpu_count() or 1)
    assert len(throttled) <= (len(log) // 100 if overloaded else 0), (throttled[:3], load)
    assert all(res["errors"] == [] for res in results), results
    assert all(res["calls"] > 10 for res in results), results  # both really shared the budget
    peak = max_in_window([r["at"] for r in log if r["status"] != 429], 1.0)
    assert peak <= 30, peak
    # sustained: at least 28.5 requests per second between the first and the last
    stamps = sorted(r["at"] for r in log)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    if not overloaded:
        assert rate >= 28.5, (rate, len(stamps), os.getloadavg())
    return results


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


def test_a_429_backs_off_every_limiter_sharing_the_bucket(make_sandbox, tmp_path):
    """One client's 429 holds back another process's client (its own engine and limiter on
    the same table) for the server's Retry-After."""
    from migrator.max.client import MaxClient
    from migrator.max.errors import MaxRateLimited

    db_url = f"sqlite:///{tmp_path / 'backoff.db'}"
    engines = [sa.create_engine(db_url, connect_args={"timeout": 30}) for _ in range(2)]
    MaxRateHit.__table__.create(engines[0])
    label = f"test-{uuid.uuid4()}"
    first, second = (DatabaseLimiter(e, label, 30) for e in engines)
    sb = make_sandbox(rps=30)
    a = MaxClient(sb.url, TOKEN, limiter=first, max_retries=0)
    b = MaxClient(sb.url, TOKEN, limiter=second, max_retries=0)
    try:
        b.get_me()
        sb.ctl("POST", "/faults", {"fail_429": {"next": 1, "retry_after": 0.6}})
        with pytest.raises(MaxRateLimited) as exc:
            a.get_me()
        assert exc.value.retry_after == pytest.approx(0.6)
        t0 = time.monotonic()
        b.get_me()  # waits for the back-off a's 429 recorded
        assert time.monotonic() - t0 >= 0.5
    finally:
        a.close()
        b.close()
        for e in engines:
            e.dispose()


def test_memory_limiter_penalty_blocks_all_threads():
    limiter = MemoryLimiter(30)
    limiter.acquire()
    limiter.penalise(0.3)
    t0 = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - t0 >= 0.25
