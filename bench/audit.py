"""Benchmark: the audit page and API over a large trail (default one million events).

    .venv/bin/python bench/audit.py [--events 1000000] [--db sqlite|postgresql|both]

For each database it builds a 10,000-event baseline and then an N-event trail (hash-chained
in Python, bulk-inserted in batches; nothing lifted: inserts are allowed), then times the
pages through the Flask test client, signed in as an administrator and as a coordinator,
and the API. PostgreSQL comes from ``BENCH_DATABASE_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test_h6``; its public schema is DROPPED and
recreated). SQLite goes to ``bench/results/audit.db``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from migrator import create_app  # noqa: E402
from migrator.audit.models import AuditEvent, AuditHead  # noqa: E402
from migrator.audit.service import GENESIS_HASH, HASHED_FIELDS  # noqa: E402
from migrator.db import get_session, make_engine, upgrade  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test_h6"
PASSWORD = "bench-password-123"
BASELINE = 10_000
DAYS = 60
ACTIONS = [  # (action, weight): the job's and Max's events dominate a real campaign
    ("max.call", 30), ("step.started", 8), ("step.succeeded", 8), ("step.failed", 1),
    ("step.retried", 1), ("mail.sent", 12), ("mail.failed", 0.5), ("max.update", 15),
    ("member.added", 10), ("member.failed", 1), ("group.link", 2), ("group.unlink", 0.2),
    ("wave.create", 0.1), ("wave.update", 0.2), ("step.confirm", 0.5), ("step.override", 0.05),
    ("import.employees", 0.02), ("import.groups", 0.02), ("auth.login", 1),
    ("auth.login_failed", 0.2), ("auth.logout", 0.5), ("user.create", 0.01),
    ("audit.export", 0.01), ("employee.linked", 5),
]
USERS = [f"user{i}@example.org" for i in range(50)]


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def build_orgs(app) -> tuple[list[int], str]:
    """A region with 20 departments of 10 organisations each; returns ids and a dept code."""
    from migrator.org.service import save_organisation

    with app.app_context():
        save_organisation("R", "Регион")
        for d in range(20):
            save_organisation(f"D{d:02}", f"Ведомство {d}", "R")
            for s in range(10):
                save_organisation(f"D{d:02}-{s}", f"Учреждение {d}-{s}", f"D{d:02}")
        session = get_session()
        session.commit()
        ids = list(session.scalars(sa.text("SELECT id FROM organisation ORDER BY id")))
    return ids, "D03"


def make_users(app, dept: str) -> None:
    from migrator.auth.service import create_user

    with app.app_context():
        create_user("admin@bench.example", PASSWORD, "admin")
        create_user("coord@bench.example", PASSWORD, "coordinator", [dept])
        get_session().commit()


def generate(n: int, org_ids: list[int], start_seq: int = 1, prev: str = GENESIS_HASH,
             seed: int = 7):
    """Yield ``n`` chained event dicts (the hash is the same as ``record()`` computes)."""
    rnd = random.Random(seed)
    actions, weights = zip(*ACTIONS, strict=True)
    t0 = datetime(2026, 7, 1, tzinfo=UTC)
    step = timedelta(days=DAYS) / max(n, 1)
    batch = 10_000
    for base in range(0, n, batch):
        picked = rnd.choices(actions, weights, k=min(batch, n - base))
        for k, action in enumerate(picked):
            i = base + k
            seq = start_seq + i
            created = t0 + step * i
            if action.startswith(("auth.", "user.", "audit.", "group.", "wave.", "step.c",
                                  "step.o", "import.")):
                label = rnd.choice(USERS)
                actor = ("user", str(USERS.index(label) + 1), label)
            elif action.startswith(("max.update",)):
                actor = ("max", "webhook", "Max webhook")
            elif action.startswith("mail."):
                actor = ("job", "mailer", "mail sender")
            else:
                actor = ("job", "runner", "step runner")
            org_id = None if rnd.random() < 0.05 else rnd.choice(org_ids)
            obj_type = "group" if action.split(".")[0] in ("step", "group", "member",
                                                            "max") else action.split(".")[0]
            ev = {
                "seq": seq, "created_at": created, "actor_type": actor[0], "actor_id": actor[1],
                "actor_label": actor[2], "action": action, "object_type": obj_type,
                "object_id": str(rnd.randint(1, 10_000)), "org_id": org_id,
                "summary": canonical({"status": rnd.choice(["ok", "failed", "waiting"]),
                                      "attempt": rnd.randint(1, 5)}),
                "request_id": f"{rnd.getrandbits(64):016x}" if actor[0] == "user" else None,
                "client_ip": "10.0.0.1" if actor[0] == "user" else None, "prev_hash": prev,
            }
            content = {name: ev[name] for name in HASHED_FIELDS}
            content["created_at"] = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ev["hash"] = prev = hashlib.sha256(canonical(content).encode()).hexdigest()
            yield ev


COLUMNS = [*HASHED_FIELDS, "hash"]


def bulk_insert(url: str, n: int, org_ids: list[int]) -> float:
    """Insert ``n`` chained events in batches; returns seconds."""
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    started = time.monotonic()
    last = None
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur, cur.copy(
                f"COPY audit_event ({', '.join(COLUMNS)}) FROM STDIN"
            ) as copy:
                for ev in generate(n, org_ids):
                    row = [ev[c] for c in COLUMNS]
                    row[1] = ev["created_at"].replace(tzinfo=None)
                    copy.write_row(row)
                    last = ev
            raw.commit()
        finally:
            raw.close()
    else:
        table = AuditEvent.__table__
        batch: list[dict] = []
        with engine.connect() as conn:
            for ev in generate(n, org_ids):
                batch.append(ev)
                last = ev
                if len(batch) == 20_000:
                    conn.execute(table.insert(), batch)
                    conn.commit()
                    batch = []
            if batch:
                conn.execute(table.insert(), batch)
                conn.commit()
    with engine.begin() as conn:
        conn.execute(sa.update(AuditHead.__table__).where(AuditHead.__table__.c.id == 1)
                     .values(last_seq=last["seq"], last_hash=last["hash"]))
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE audit_event")
    engine.dispose()
    return time.monotonic() - started


def fresh_database(kind: str) -> str:
    if kind == "postgresql":
        url = os.environ.get("BENCH_DATABASE_URL", PG_DEFAULT)
        engine = make_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "audit.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    upgrade(url)
    return url


def cases(n: int) -> list[tuple[str, str, str]]:
    """(who, label, url): every page a reader would open, plus the API."""
    deep = max(2, n // 100)
    mid = n // 2
    return [
        ("admin", "first page", "/audit/"),
        ("admin", "action prefix (step.)", "/audit/?action=step."),
        ("admin", "department subtree + action", "/audit/?org=D05&action=step."),
        ("admin", "rare action in a department", "/audit/?org=D05&action=step.failed"),
        ("admin", "actor (e-mail)", "/audit/?actor=user7%40example.org"),
        ("admin", "object (group 123)", "/audit/?object_type=group&object_id=123"),
        ("admin", "period (one day)", "/audit/?from=2026-08-01&to=2026-08-01"),
        ("admin", "deep keyset page", f"/audit/?before={deep}"),
        ("admin", "newer page (after=)", f"/audit/?after={mid}"),
        ("admin", "API since=seq, 100", f"/api/v1/audit?since={mid}&limit=100"),
        ("admin", "API since=time, 100", "/api/v1/audit?since=2026-08-15T00:00:00%2B05:00"),
        ("coord", "first page", "/audit/"),
        ("coord", "action prefix (group.)", "/audit/?action=group."),
        ("coord", "deep keyset page", f"/audit/?before={deep}"),
        ("coord", "API since=0, 100", "/api/v1/audit?since=0&limit=100"),
    ]


def measure(app, n: int, repeat: int) -> dict[tuple[str, str], tuple[float, float]]:
    clients = {}
    for who, email in (("admin", "admin@bench.example"), ("coord", "coord@bench.example")):
        client = app.test_client()
        resp = client.post("/login", data={"email": email, "password": PASSWORD})
        assert resp.status_code == 302, resp.status_code
        clients[who] = client
    out = {}
    for who, label, url in cases(n):
        client, times = clients[who], []
        for i in range(repeat + 2):
            t = time.perf_counter()
            resp = client.get(url)
            elapsed = (time.perf_counter() - t) * 1000
            assert resp.status_code == 200, (url, resp.status_code)
            if i >= 2:  # two warm-up requests
                times.append(elapsed)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        out[(who, label)] = (statistics.median(times), p95)
    return out


def run(kind: str, n: int, repeat: int) -> list[str]:
    results = {}
    for size in (BASELINE, n):
        url = fresh_database(kind)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key-0123456789",
                          "WTF_CSRF_ENABLED": False, "TESTING": True})
        logging.getLogger("migrator").setLevel(logging.WARNING)
        org_ids, dept = build_orgs(app)
        print(f"[{kind}] inserting {size:,} events...", file=sys.stderr, flush=True)
        secs = bulk_insert(url, size, org_ids)
        make_users(app, dept)  # their user.create events chain on after the bulk
        print(f"[{kind}] {size:,} events in {secs:.1f}s ({size / secs:,.0f}/s); timing...",
              file=sys.stderr, flush=True)
        results[size] = measure(app, size, repeat)
        app.extensions["migrator.engine"].dispose()
    lines = [f"| {kind} | case | events | p50 ms | p95 ms | p50 at 10k | ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (who, label), (p50, p95) in results[n].items():
        base = results[BASELINE][(who, label)][0]
        lines.append(f"| {who} | {label} | {n:,} | {p50:.1f} | {p95:.1f} | {base:.1f} | "
                     f"{p50 / base:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per case")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    tables = []
    for kind in kinds:
        tables.append("\n".join(run(kind, args.events, args.repeat)))
    print()
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
