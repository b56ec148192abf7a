"""Page latencies at region scale on SQLite and PostgreSQL (``make bench``).

Seeds (or reuses) a region-scale database (``flask demo seed --scale region``) and a small
one (the demo region only), then requests the main pages with the Flask test client: a
warm-up, then ``--repeat`` timed requests each. Prints p50/p95 per page and database and the
ratio of the region-scale p95 to the small-data p95.

Databases:
- SQLite: files under ``--sqlite-dir`` (default ``bench/results/``, git-ignored), kept
  between runs.
- PostgreSQL: ``BENCH_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/
  test``), in the schemas ``bench_region`` and ``bench_small`` (created when missing, so the
  test suite's ``public`` schema is left alone). Skipped when unreachable.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COORD_EMAIL, COORD_PASSWORD = "bench-coordinator@example.org", "bench-coord-2026"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.org", "demo-admin-2026"
TARGET_MS = 200.0


def pg_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def pg_reachable(base: str) -> bool:
    try:
        import psycopg

        psycopg.connect(base.replace("+psycopg", ""), connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001
        return False


def ensure_pg_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def make_app(url: str):
    from migrator import create_app

    return create_app({"DATABASE_URL": url, "WTF_CSRF_ENABLED": False, "TESTING": False,
                       "SECRET_KEY": "bench-secret-key-0123456789"})


def prepare(url: str, scale: str, args) -> object:
    """Migrate, seed (idempotent) and add the bench coordinator; return the app."""
    from migrator.db import upgrade

    upgrade(url)
    app = make_app(url)
    cmd = ["demo", "seed"]
    if scale == "region":
        cmd += ["--scale", "region", "--orgs", str(args.orgs), "--groups", str(args.groups),
                "--employees", str(args.employees), "--memberships", str(args.memberships),
                "--audit-events", str(args.audit_events)]
    t0 = time.monotonic()
    result = app.test_cli_runner().invoke(args=cmd)
    if result.exit_code != 0:
        raise SystemExit(f"seeding failed: {result.output}\n{result.exception!r}")
    lines = [ln for ln in result.output.splitlines() if "already present" in ln]
    print(f"  {scale}: {'reused' if lines and scale == 'small' or len(lines) > 1 else 'seeded'}"
          f" in {time.monotonic() - t0:.1f}s", flush=True)
    with app.app_context():
        from sqlmodel import select

        from migrator.auth.models import User
        from migrator.auth.service import create_user
        from migrator.db import get_session
        from migrator.org.models import Organisation

        session = get_session()
        if session.exec(select(User).where(User.email == COORD_EMAIL)).first() is None:
            code = "RS-M001" if scale == "region" else "MO-LES"
            if session.exec(select(Organisation).where(Organisation.code == code)).first():
                create_user(COORD_EMAIL, COORD_PASSWORD, "coordinator", [code])
                session.commit()
    return app


def sample_targets(app, scale: str) -> dict:
    """Codes and keys that the pages open: a municipality, one group."""
    with app.app_context():
        import sqlalchemy as sa

        from migrator.db import get_session
        from migrator.groups.models import SourceGroup
        from migrator.org.models import Organisation

        session = get_session()
        org = "RS-M001" if scale == "region" else "MO-LES"
        org_id = session.scalar(sa.select(Organisation.id).where(Organisation.code == org))
        group = session.scalar(
            sa.select(SourceGroup.key).where(
                SourceGroup.org_id.in_(sa.select(Organisation.id).where(
                    Organisation.path.like(f"%/{org_id}/%"))),
                SourceGroup.wave_id.is_not(None))
            .order_by(SourceGroup.member_count.desc()).limit(1))
        return {"org": org, "group": group}


def pages(app, targets: dict) -> list[tuple[str, str, str]]:
    """(label, user, url) for every main page that exists in this build."""
    views = app.view_functions
    out = [("dashboard", "admin", "/"),
           ("dashboard", "coordinator", "/"),
           ("dashboard ?org=municipality", "admin", f"/?org={targets['org']}")]
    if "org.tree" in views:
        out.append(("organisation tree", "admin", "/orgs/"))
        out.append(("organisation tree ?root=municipality", "admin",
                    f"/orgs/?root={targets['org']}"))
        out.append(("organisation search", "admin", "/orgs/?q=" + quote("школа")))
    if "people.employees" in views:
        out.append(("employees, search", "admin", "/employees/?q=" + quote("Иван")))
        out.append(("employees, search, no match", "admin", "/employees/?q=" + quote("Щъю")))
        out.append(("employees, coordinator", "coordinator", "/employees/?linked=no"))
    if "groups.groups" in views:
        out.append(("groups, filters", "admin", "/groups/?platform=whatsapp&mapping=linked"))
        out.append(("groups, coordinator", "coordinator", "/groups/?sort=members&desc=1"))
    if "groups.detail" in views and targets.get("group"):
        out.append(("group page", "admin", f"/groups/{targets['group']}"))
    out.append(("needs attention", "admin", "/attention"))
    out.append(("needs attention", "coordinator", "/attention"))
    if "audit.events" in views:
        out.append(("audit log", "admin", "/audit/"))
    out.append(("API progress", "admin", "/api/v1/progress"))
    out.append(("printable report (2 levels)", "admin", "/progress/report"))
    out.append(("XLSX report (every org)", "admin", "/progress/report.xlsx"))
    return out


def login(app, email: str, password: str):
    client = app.test_client()
    resp = client.post("/login", data={"email": email, "password": password})
    if resp.status_code != 302:
        raise SystemExit(f"cannot sign in as {email}: {resp.status_code}")
    return client


def measure(app, targets: dict, repeat: int, warmup: int) -> dict:
    clients = {"admin": login(app, ADMIN_EMAIL, ADMIN_PASSWORD)}
    try:
        clients["coordinator"] = login(app, COORD_EMAIL, COORD_PASSWORD)
    except SystemExit:
        clients["coordinator"] = None
    results = {}
    for label, who, url in pages(app, targets):
        client = clients.get(who)
        if client is None:
            continue
        for _ in range(warmup):
            client.get(url)
        times, status, rows = [], None, 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            resp = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            status = resp.status_code
        if resp.mimetype == "text/html":
            page = resp.get_data(as_text=True)
            # table rows, or the organisations of the tree page
            rows = page.count("<tr") or page.count('class="leaf"') + page.count("<summary>")
        elif resp.is_json:
            rows = len((resp.get_json(silent=True) or {}).get("children", []))
        else:
            rows = 0
        times.sort()
        p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
        results[(label, who)] = {"url": url, "status": status, "rows": rows,
                                 "p50": statistics.median(times), "p95": p95}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--sqlite-dir",
                        default=os.environ.get("BENCH_SQLITE_DIR", str(ROOT / "bench" / "results")))
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=10000)
    parser.add_argument("--employees", type=int, default=60000)
    parser.add_argument("--memberships", type=int, default=300000)
    parser.add_argument("--audit-events", type=int, default=1_000_000)
    args = parser.parse_args()

    import logging

    logging.getLogger("migrator").setLevel(logging.WARNING)
    dbs = []
    if args.db in ("sqlite", "both"):
        d = Path(args.sqlite_dir)
        d.mkdir(parents=True, exist_ok=True)
        dbs.append(("sqlite", f"sqlite:///{d / 'migrator-bench-small.db'}",
                    f"sqlite:///{d / 'migrator-bench-region.db'}"))
    if args.db in ("postgresql", "both"):
        base = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
        if pg_reachable(base):
            for schema in ("bench_small", "bench_region"):
                ensure_pg_schema(base, schema)
            dbs.append(("postgresql", pg_url(base, "bench_small"), pg_url(base, "bench_region")))
        else:
            print(f"PostgreSQL at {base} is not reachable: skipped", flush=True)

    table = []
    for kind, small_url, region_url in dbs:
        print(f"{kind}: preparing databases", flush=True)
        small_app = prepare(small_url, "small", args)
        region_app = prepare(region_url, "region", args)
        print(f"{kind}: measuring", flush=True)
        small = measure(small_app, sample_targets(small_app, "small"), args.repeat, args.warmup)
        region = measure(region_app, sample_targets(region_app, "region"), args.repeat,
                         args.warmup)
        for key, r in region.items():
            s = small.get(key)
            ratio = r["p95"] / s["p95"] if s and s["p95"] else None
            table.append((f"{key[0]} ({key[1]})", kind, r, ratio))
        for app in (small_app, region_app):
            app.extensions["migrator.engine"].dispose()

    print()
    head = f"| {'page':<42} | {'db':<10} | {'status':>6} | {'rows':>5} | {'p50 ms':>7} | " \
           f"{'p95 ms':>7} | {'x small':>7} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    slow = []
    for page, kind, r, ratio in table:
        mark = " !" if r["p95"] > TARGET_MS else ""
        print(f"| {page:<42} | {kind:<10} | {r['status']:>6} | {r['rows']:>5} | "
              f"{r['p50']:>7.1f} | {r['p95']:>7.1f}{mark} | "
              f"{(f'{ratio:.1f}' if ratio else '-'):>7} |")
        if r["p95"] > TARGET_MS:
            slow.append(f"{page} on {kind}: p95 {r['p95']:.0f} ms ({r['url']})")
    print()
    if slow:
        print(f"Over the {TARGET_MS:.0f} ms p95 target:")
        for line in slow:
            print("  " + line)
    else:
        print(f"Every page is under the {TARGET_MS:.0f} ms p95 target.")
    bad = [p for p, _k, r, _ in table if r["status"] != 200]
    if bad:
        print("Pages that did not answer 200: " + ", ".join(sorted(set(bad))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
