"""Speed at region scale, mid-migration, on SQLite and PostgreSQL (``make bench``).

For each database: seeds (or reuses) a region with ``flask demo seed --scale region
--waves 10 --plan-all-groups`` (2,000 organisations, 60,000 employees, 10,000 groups,
300,000 memberships, every group planned into one of 10 waves: 50,000 steps), serves it with
gunicorn (2 workers) and requests every page reachable from the dashboard over HTTP as the
administrator and as a coordinator of one municipality: ``--warmup`` requests, then
``--repeat`` timed ones, each to its last byte. Then times the four imports of a region
(``bench/imports.py``). Prints the data sizes, p50/p95 per page with the ratio to the 150 ms
target, and the import times with the ratio to the 30 s target.

Databases:
- SQLite: files under ``--sqlite-dir`` (default ``bench/results/``, git-ignored), kept
  between runs.
- PostgreSQL: ``BENCH_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/
  test``), in the schemas ``bench_region`` and ``bench_import`` (``bench_import`` is dropped
  and recreated on every run; ``public`` is never touched). Skipped when unreachable.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import imports as import_bench  # noqa: E402
from bench.common import bench_pg_base, ensure_pg_schema, pg_reachable, pg_url  # noqa: E402

COORD_EMAIL, COORD_PASSWORD = "bench-coordinator@example.org", "bench-coord-2026"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.org", "demo-admin-2026"
TARGET_MS = 150.0
SECRET = "bench-secret-key-0123456789abcdef"


def prepare(url: str, args) -> dict:
    """Migrate, seed (idempotent) and add the bench coordinator; return the data sizes."""
    from migrator import create_app
    from migrator.db import upgrade

    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET})
    cmd = ["demo", "seed", "--scale", "region", "--orgs", str(args.orgs), "--groups",
           str(args.groups), "--employees", str(args.employees), "--memberships",
           str(args.memberships), "--audit-events", str(args.audit_events), "--waves",
           str(args.waves), "--plan-all-groups"]
    t0 = time.monotonic()
    result = app.test_cli_runner().invoke(args=cmd)
    if result.exit_code != 0:
        raise SystemExit(f"seeding failed: {result.output}\n{result.exception!r}")
    reused = "Region-scale data already present" in result.output
    print(f"  region {'reused' if reused else 'seeded'} in {time.monotonic() - t0:.1f}s",
          flush=True)
    with app.app_context():
        import sqlalchemy as sa
        from sqlmodel import select

        from migrator.audit.models import AuditEvent
        from migrator.auth.models import User
        from migrator.auth.service import create_api_token, create_user
        from migrator.db import get_session
        from migrator.demo.bulk import analyze
        from migrator.engine.models import Step
        from migrator.groups.models import GroupMember, SourceGroup
        from migrator.org.models import Organisation
        from migrator.people.models import Employee
        from migrator.waves.models import Wave

        session = get_session()
        if session.exec(select(User).where(User.email == COORD_EMAIL)).first() is None:
            create_user(COORD_EMAIL, COORD_PASSWORD, "coordinator", ["RS-M001"])
            session.commit()
        # Statistics and the visibility map as autovacuum keeps them (a database whose
        # autovacuum is off, or that a migration just changed, would be measured without).
        session.close()  # on SQLite its transaction holds the write lock
        analyze()
        # The API has no session: the administrator's requests to it carry a Bearer token.
        admin = session.exec(select(User).where(User.email == ADMIN_EMAIL)).one()
        token = create_api_token(admin)
        session.commit()

        def count(model):
            return session.scalar(sa.select(sa.func.count()).select_from(model))

        sizes = {"organisations": count(Organisation), "employees": count(Employee),
                 "groups": count(SourceGroup), "memberships": count(GroupMember),
                 "waves": count(Wave), "steps": count(Step), "audit events": count(AuditEvent)}
        org_id = session.scalar(sa.select(Organisation.id).where(Organisation.code == "RS-M001"))
        group = session.scalar(
            sa.select(SourceGroup.key).where(
                SourceGroup.org_id.in_(sa.select(Organisation.id).where(
                    Organisation.path.like(f"%/{org_id}/%"))),
                SourceGroup.wave_id.is_not(None))
            .order_by(SourceGroup.member_count.desc()).limit(1))
        # The region-wide wave with the most groups, and one of the coordinator's.
        wave = session.execute(
            sa.select(SourceGroup.wave_id, sa.func.count()).where(SourceGroup.wave_id.is_not(None))
            .group_by(SourceGroup.wave_id)
            .order_by(sa.func.count().desc(), SourceGroup.wave_id).limit(1)).first()
    app.extensions["migrator.engine"].dispose()
    sizes["groups in the wave"] = wave[1]
    return {"sizes": sizes, "org": "RS-M001", "group": group, "wave": wave[0],
            "api_headers": {"Authorization": f"Bearer {token}"}}


def pages(t: dict) -> list[tuple[str, str, str]]:
    """(label, user, url) of every page reachable from the dashboard (and their filters)."""
    w = t["wave"]
    return [
        ("dashboard", "admin", "/"),
        ("dashboard", "coordinator", "/"),
        ("dashboard ?org=municipality", "admin", f"/?org={t['org']}"),
        ("organisation tree", "admin", "/orgs/"),
        ("organisation tree ?root=municipality", "admin", f"/orgs/?root={t['org']}"),
        ("organisation search", "admin", "/orgs/?q=" + quote("школа")),
        ("employees", "admin", "/employees/"),
        ("employees, search", "admin", "/employees/?q=" + quote("Иван")),
        ("employees, search, no match", "admin", "/employees/?q=" + quote("Щъю")),
        ("employees, not linked", "coordinator", "/employees/?linked=no"),
        ("groups", "admin", "/groups/"),
        ("groups, filters", "admin", "/groups/?platform=whatsapp&mapping=linked"),
        ("groups, by members", "coordinator", "/groups/?sort=members&desc=1"),
        ("group page", "admin", f"/groups/{t['group']}"),
        ("waves", "admin", "/waves/"),
        (f"wave page ({t['sizes']['groups in the wave']} groups)", "admin", f"/waves/{w}"),
        ("wave page, page 10", "admin", f"/waves/{w}?page=10"),
        ("wave page, state failed", "admin", f"/waves/{w}?state=failed"),
        ("wave page, state done", "admin", f"/waves/{w}?state=done"),
        ("wave page", "coordinator", f"/waves/{w}"),
        ("new wave form", "admin", "/waves/new"),
        ("wave settings", "admin", "/waves/settings"),
        ("needs attention", "admin", "/attention"),
        ("needs attention", "coordinator", "/attention"),
        ("Max chats", "admin", "/max/chats"),
        ("imports", "admin", "/imports/"),
        ("audit log", "admin", "/audit/"),
        ("API progress", "admin", "/api/v1/progress"),
        ("printable report (2 levels)", "admin", "/progress/report"),
        ("printable report", "coordinator", "/progress/report"),
        ("XLSX report (every organisation)", "admin", "/progress/report.xlsx"),
        ("XLSX report", "coordinator", "/progress/report.xlsx"),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET,
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", str(workers), "-b",
         f"127.0.0.1:{port}", "--timeout", "120", "--log-level", "warning", "app:app"],
        cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        try:
            if httpx.get(base + "/login", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("gunicorn did not start")
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not answer")


def login(base: str, email: str, password: str):
    import httpx

    client = httpx.Client(base_url=base, timeout=120)
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
        re.search(r'name="csrf_token" value="([^"]+)"', page)
    resp = client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token.group(1) if token else ""})
    if resp.status_code != 302:
        raise SystemExit(f"cannot sign in as {email}: {resp.status_code}")
    return client


def measure(base: str, targets: dict, repeat: int, warmup: int,
            only: str | None = None) -> list[dict]:
    clients = {"admin": login(base, ADMIN_EMAIL, ADMIN_PASSWORD),
               "coordinator": login(base, COORD_EMAIL, COORD_PASSWORD)}
    results = []
    for label, who, url in pages(targets):
        if only and not re.search(only, label):
            continue
        client = clients[who]
        headers = targets["api_headers"] if url.startswith("/api/") else None
        for _ in range(warmup):
            client.get(url, headers=headers)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            resp = client.get(url, headers=headers)  # the whole body is read: to the last byte
            times.append((time.perf_counter() - t0) * 1000)
        kind = resp.headers.get("content-type", "")
        rows = resp.text.count("<tr") if kind.startswith("text/html") else None
        times.sort()
        p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
        results.append({"page": label, "who": who, "url": url, "status": resp.status_code,
                        "rows": rows, "bytes": len(resp.content),
                        "p50": statistics.median(times), "p95": p95})
    for client in clients.values():
        client.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    import_bench.add_arguments(parser)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--audit-events", type=int, default=200_000)
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--only", metavar="REGEX",
                        help="time only the pages whose label matches (e.g. 'dashboard|XLSX')")
    args = parser.parse_args()

    dbs = []
    if args.db in ("sqlite", "both"):
        d = Path(args.sqlite_dir)
        d.mkdir(parents=True, exist_ok=True)
        dbs.append(("sqlite", f"sqlite:///{d / 'migrator-bench-region10.db'}"))
    if args.db in ("postgresql", "both"):
        base = bench_pg_base()
        if pg_reachable(base):
            ensure_pg_schema(base, "bench_region10")
            dbs.append(("postgresql", pg_url(base, "bench_region10")))
        else:
            print(f"PostgreSQL at {base} is not reachable: skipped", flush=True)

    sizes, table = {}, []
    for kind, url in dbs:
        print(f"{kind}: preparing the region", flush=True)
        targets = prepare(url, args)
        sizes[kind] = targets["sizes"]
        proc, base = start_gunicorn(url, args.workers)
        try:
            print(f"{kind}: measuring over HTTP (gunicorn, {args.workers} workers)", flush=True)
            table += [(kind, r) for r in measure(base, targets, args.repeat, args.warmup,
                                                     args.only)]
        finally:
            proc.terminate()
            proc.wait(30)
    imports = [] if args.skip_imports else import_bench.bench([k for k, _u in dbs], args)

    print()
    kinds = list(sizes)
    print("| data | " + " | ".join(kinds) + " |")
    print("| --- |" + " ---: |" * len(kinds))
    for key in next(iter(sizes.values()), {}):
        print(f"| {key} | " + " | ".join(f"{sizes[k][key]:,}" for k in kinds) + " |")
    print()
    print(f"| page | user | db | status | rows | p50 ms | p95 ms | p95 / {TARGET_MS:.0f} ms |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    over = []
    for kind, r in sorted(table, key=lambda x: x[0] != "sqlite"):
        ratio = r["p95"] / TARGET_MS
        rows = "—" if r["rows"] is None else r["rows"]
        print(f"| {r['page']} | {r['who']} | {kind} | {r['status']} | {rows} | "
              f"{r['p50']:.1f} | {r['p95']:.1f} | {ratio:.2f}{' !' if ratio > 1 else ''} |")
        if ratio > 1:
            over.append(f"{r['page']} ({r['who']}) on {kind}: p95 {r['p95']:.0f} ms "
                        f"({r['url']})")
        if r["status"] != 200:
            over.append(f"{r['page']} ({r['who']}) on {kind}: status {r['status']}")
    if imports:
        over += import_bench.print_table(imports)
    print()
    if over:
        print("Over a target:")
        for line in over:
            print("  " + line)
    else:
        print("Every page and every import is within its target.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
