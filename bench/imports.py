"""Import times at region scale: the four CSV imports of a region through ``flask import``.

Writes (once, kept in ``bench/results/import-*.csv``) the files of a fictional region —
organisations, employees, groups, memberships — and imports them, in that order, into an
empty database with the command operators use (``flask --app app import KIND FILE``), one
process per file. Reports each command's wall time (process start included), rows and the
process's peak RSS.

Run alone: ``.venv/bin/python bench/imports.py [--db sqlite|postgresql|both]``; ``make
bench`` runs it together with the page latencies (``bench/pages.py``).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_pg_base, pg_reachable, pg_url, reset_pg_schema  # noqa: E402

KINDS = ("organisations", "employees", "groups", "members")
TARGET_S = 30.0
RSS_LIMIT_MB = 500
SURNAMES = ["Иванов", "Петров", "Сидоров", "Кузнецов", "Смирнов", "Попов", "Васильев",
            "Соколов", "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев"]
NAMES = ["Иван", "Пётр", "Сергей", "Андрей", "Алексей", "Дмитрий", "Николай", "Михаил"]
PATRONYMICS = ["Иванович", "Петрович", "Сергеевич", "Андреевич", "Алексеевич"]
POSITIONS = ["Специалист", "Главный специалист", "Начальник отдела", "Заместитель",
             "Учитель", "Бухгалтер", "Инженер"]
PLATFORMS = ("whatsapp",) * 7 + ("telegram",) * 2 + ("viber",)


def write_files(folder: Path, orgs: int, employees: int, groups: int,
                memberships: int) -> dict[str, Path]:
    """The region's four import files (reused when present with the same sizes)."""
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{orgs}-{employees}-{groups}-{memberships}"
    paths = {k: folder / f"import-{tag}-{k}.csv" for k in KINDS}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = random.Random(11)
    # Organisations: the region, municipalities, their units, then the leaves.
    n1 = max(1, round(orgs / 100))
    n2 = min(max(0, orgs - 1 - n1), n1 * 9)
    n3 = max(0, orgs - 1 - n1 - n2)
    org_rows = [("IR", "Правительство региона (импорт)", "")]
    level1 = [f"IR-M{i:03d}" for i in range(n1)]
    level2 = [f"IR-T{i:04d}" for i in range(n2)]
    org_rows += [(c, f"Администрация округа № {i + 1}", "IR") for i, c in enumerate(level1)]
    org_rows += [(c, f"Территориальное управление № {i + 1}", level1[i % n1])
                 for i, c in enumerate(level2)]
    parents = level2 or level1
    org_rows += [(f"IR-L{i:05d}", f"МБОУ «Средняя школа № {i + 1}»", parents[i % len(parents)])
                 for i in range(n3)]
    parent_of = {code: parent for code, _n, parent in org_rows}
    codes = [r[0] for r in org_rows]
    with paths["organisations"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "parent_code", "head_email"])
        for code, name, parent in org_rows:
            w.writerow([code, name, parent, ""])
    staff: dict[str, list[str]] = {}
    with paths["employees"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email", "full_name", "org_code", "position", "phone"])
        for i in range(employees):
            code = codes[i % len(codes)]
            email = f"e{i}@{code.lower()}.ir.example"
            staff.setdefault(code, []).append(email)
            w.writerow([email, f"{rng.choice(SURNAMES)} {rng.choice(NAMES)} "
                               f"{rng.choice(PATRONYMICS)}", code, rng.choice(POSITIONS),
                        f"+7 900 {i:07d}"])
    group_orgs = [c for c in codes if c in staff]
    keys = []
    with paths["groups"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "name", "platform", "org_code", "owner_email"])
        for i in range(groups):
            code = group_orgs[i % len(group_orgs)]
            keys.append((f"ig{i}", code))
            w.writerow([f"ig{i}", f"Рабочая группа {i + 1}", rng.choice(PLATFORMS), code,
                        staff[code][0]])
    per_group = max(1, memberships // max(1, groups))
    written = 0
    with paths["members"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["group_key", "email"])
        for n, (key, code) in enumerate(keys):
            # The organisation's staff and its parent's (a school's group has the unit's).
            people = staff[code] + staff.get(parent_of.get(code) or "", [])
            left = memberships - written
            size = min(len(people), per_group if n < len(keys) - 1 else left, left)
            for email in rng.sample(people, size):
                w.writerow([key, email])
            written += size
    return paths


def reset_database(kind: str, url: str, base_pg: str | None) -> None:
    from migrator.db import upgrade

    if kind == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        reset_pg_schema(base_pg, "bench_import")
    upgrade(url)


def run_imports(url: str, paths: dict[str, Path]) -> list[dict]:
    """Each import as its own ``flask import`` process: wall time, peak RSS, its output."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"}
    # As an installation runs them: with the byte code ``make install`` compiles.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "migrator", "app.py"], cwd=ROOT,
                   check=True)
    flask = [sys.executable, "-m", "flask", "--app", "app", "import"]
    out = []
    for kind in KINDS:
        with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
            t0 = time.perf_counter()
            proc = subprocess.Popen([*flask, kind, str(paths[kind])], cwd=ROOT, env=env,
                                    stdout=so, stderr=se, text=True)
            # wait4 gives this child's own resource usage: ru_maxrss is its peak RSS (KiB).
            _pid, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            so.seek(0)
            se.seek(0)
            stdout, stderr = so.read(), se.read()
        rss_mb = usage.ru_maxrss / 1024
        cpu = usage.ru_utime + usage.ru_stime
        if proc.returncode != 0:
            raise SystemExit(f"import {kind} failed:\n{stdout}\n{stderr[-3000:]}")
        out.append({"kind": kind, "seconds": seconds, "cpu": cpu, "rss_mb": rss_mb,
                    "output": stdout.strip()})
    return out


def bench(kinds: list[str], args) -> list[tuple[str, list[dict]]]:
    paths = write_files(Path(args.sqlite_dir), args.orgs, args.employees, args.groups,
                        args.memberships)
    results = []
    for kind in kinds:
        if kind == "sqlite":
            url = f"sqlite:///{Path(args.sqlite_dir) / 'migrator-bench-import.db'}"
            base = None
        else:
            base = bench_pg_base()
            if not pg_reachable(base):
                print(f"PostgreSQL at {base} is not reachable: import bench skipped", flush=True)
                continue
            url = pg_url(base, "bench_import")
        print(f"{kind}: importing the region ({args.orgs} organisations, {args.employees} "
              f"employees, {args.groups} groups, {args.memberships} memberships)", flush=True)
        reset_database(kind, url, base)
        results.append((kind, run_imports(url, paths)))
    return results


def print_table(results: list[tuple[str, list[dict]]]) -> list[str]:
    """Print the import table; return the lines over a target."""
    print()
    print("| import | db | seconds | CPU s | peak RSS MB | result |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    over = []
    for kind, runs in results:
        total = sum(r["seconds"] for r in runs)
        peak = max(r["rss_mb"] for r in runs)
        cpu = sum(r["cpu"] for r in runs)
        for r in runs:
            print(f"| {r['kind']} | {kind} | {r['seconds']:.1f} | {r['cpu']:.1f} | "
                  f"{r['rss_mb']:.0f} | "
                  f"{r['output'].splitlines()[-1] if r['output'] else ''} |")
        print(f"| **all four** | {kind} | **{total:.1f}** (x{total / TARGET_S:.2f} of "
              f"{TARGET_S:.0f} s) | {cpu:.1f} | {peak:.0f} (x{peak / RSS_LIMIT_MB:.2f} of "
              f"{RSS_LIMIT_MB}) | |")
        if total > TARGET_S:
            over.append(f"imports on {kind}: {total:.1f} s > {TARGET_S:.0f} s")
        if peak >= RSS_LIMIT_MB:
            over.append(f"import RSS on {kind}: {peak:.0f} MB >= {RSS_LIMIT_MB} MB")
    return over


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--sqlite-dir",
                        default=os.environ.get("BENCH_SQLITE_DIR", str(ROOT / "bench" / "results")))
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=10000)
    parser.add_argument("--employees", type=int, default=60000)
    parser.add_argument("--memberships", type=int, default=300000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    over = print_table(bench(kinds, args))
    for line in over:
        print("Over target: " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
