"""``flask demo seed``: a small fictional demo region, or region-scale data for benchmarks.

The small region is written through the services (organisations, users) and models and is
idempotent: a second run changes nothing. ``--scale region`` adds thousands of
organisations, groups, employees, memberships and audit events with the bulk writer
(:mod:`migrator.demo.bulk`: COPY on PostgreSQL), the audit events chained with the same hash
as :func:`record`.
"""

from __future__ import annotations

import random
import time as _time
from datetime import datetime, timedelta

import click
import sqlalchemy as sa
from sqlmodel import select

from migrator.attention.service import flag_group
from migrator.audit.service import record
from migrator.auth.models import User
from migrator.auth.service import create_user
from migrator.db import bulk_insert, get_engine, get_session, utcnow
from migrator.demo.bulk import Bulk, analyze, bulk_audit, fix_sequences, next_id, say
from migrator.demo.data import (
    ADD_ERRORS,
    ADMIN,
    AUDITOR,
    COORDINATOR,
    FULL_RIGHTS,
    GROUP_NAMES,
    GROUPS,
    HEAD_POSITIONS,
    LEAF_KINDS,
    ORGS,
    POSITIONS,
    REGION_CODE,
    TOWNS,
    person,
)
from migrator.engine.models import STEP_KINDS, Step
from migrator.groups import states
from migrator.groups.attention import BOT_REMOVED, reason
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import MaxChat
from migrator.org.models import Organisation
from migrator.org.service import save_organisation
from migrator.people.models import Employee
from migrator.progress.models import ProgressSnapshot
from migrator.progress.service import local_today, take_snapshots
from migrator.waves.models import Wave

ATTENTION_BOT_REMOVED = reason(BOT_REMOVED)


# --- the small demo region --------------------------------------------------------------------


def demo_present() -> bool:
    session = get_session()
    return (session.exec(select(Organisation).where(Organisation.code == REGION_CODE)).first()
            is not None and session.exec(select(User).where(User.email == ADMIN[0])).first()
            is not None)


def seed_small(now: datetime | None = None) -> dict:
    """Create the demo region, its people, groups, chats, waves, steps and 30 days of
    snapshots in one transaction. Returns counts. Call only when :func:`demo_present` is
    false."""
    session = get_session()
    rng = random.Random(2026)
    now = now or utcnow()
    start = now - timedelta(days=35)
    stats = {"organisations": 0, "employees": 0, "groups": 0, "memberships": 0}
    orgs: dict[str, Organisation] = {}
    staff: dict[str, list[Employee]] = {}
    used_emails: set[str] = set()
    max_ids = iter(range(910_000_001, 910_100_000))

    # Share of linked people per organisation: the first wave is ahead.
    linked_share = {"REGION": 0.9, "MINOBR": 0.95, "MINZKH": 0.85, "MINZDRAV": 0.8,
                    "ZDRAV-LCGB": 0.3, "MFC": 0.7, "MO-LES": 0.75, "MO-LES-SCH3": 0.55,
                    "MO-LES-TEPLO": 0.5, "MO-LES-MFC": 0.6, "MO-REC": 0.25, "MO-REC-SCH1": 0.1,
                    "MO-REC-VODO": 0.0, "MO-REC-MFC": 0.15}

    for code, name, parent, domain, n_staff in ORGS:
        people = []
        for i in range(n_staff):
            full_name, sur, initials = person(rng)
            email = f"{sur}.{initials}@{domain}"
            k = 2
            while email in used_emails:
                email = f"{sur}.{initials}{k}@{domain}"
                k += 1
            used_emails.add(email)
            position = HEAD_POSITIONS[code] if i == 0 else rng.choice(POSITIONS)
            people.append((email, full_name, position))
        org = save_organisation(code, name, parent, head_email=people[0][0])
        org.created_at = start
        orgs[code] = org
        record("org.create", object_type="organisation", object_id=org.id, org_id=org.id,
               summary={"code": code, "source": "demo"})
        stats["organisations"] += 1
        staff[code] = []
        for i, (email, full_name, position) in enumerate(people):
            # The head of REC-VODO and REC-SCH1 are not yet in Max (attention list).
            is_linked = rng.random() < linked_share[code] or (i == 0 and linked_share[code] > 0.2)
            linked_at = start + timedelta(days=5 + rng.random() * 29.5) if is_linked else None
            emp = Employee(email=email, full_name=full_name, position=position,
                           phone=f"+7 (343) {rng.randint(200, 399)}-{rng.randint(10, 99)}-"
                                 f"{rng.randint(10, 99)}",
                           org_id=org.id, max_user_id=next(max_ids) if is_linked else None,
                           linked_at=min(linked_at, now) if linked_at else None,
                           created_at=start, updated_at=start)
            session.add(emp)
            staff[code].append(emp)
            stats["employees"] += 1
    session.flush()

    day = timedelta(days=1)
    wave_specs = {
        1: dict(name="Волна 1: органы исполнительной власти", org=None, status="active",
                invite_at=now - 25 * day, add_members_at=now - 20 * day,
                announce_at=now - 14 * day, cutover_at=now - 3 * day, deadline=now + 5 * day),
        2: dict(name="Волна 2: Лесногорский городской округ", org="MO-LES", status="active",
                invite_at=now - 10 * day, add_members_at=now - 6 * day,
                announce_at=now - 2 * day, cutover_at=now + 6 * day, deadline=now + 12 * day),
        3: dict(name="Волна 3: Реченский муниципальный район", org="MO-REC", status="planned",
                invite_at=now + 3 * day, add_members_at=now + 7 * day,
                announce_at=now + 10 * day, cutover_at=now + 20 * day, deadline=now + 30 * day),
        4: dict(name="Пилот: руководители МФЦ", org="MFC", status="active",
                invite_at=now - 30 * day, add_members_at=now - 26 * day,
                announce_at=now - 20 * day, cutover_at=now - 8 * day, deadline=now - 2 * day),
    }
    waves = {}
    for n, spec in wave_specs.items():
        wave = Wave(name=spec["name"], org_id=orgs[spec["org"]].id if spec["org"] else None,
                    status=spec["status"], invite_at=spec["invite_at"],
                    add_members_at=spec["add_members_at"], announce_at=spec["announce_at"],
                    cutover_at=spec["cutover_at"], deadline=spec["deadline"],
                    created_at=start, updated_at=start)
        session.add(wave)
        waves[n] = wave
    session.flush()
    for wave in waves.values():
        record("wave.create", object_type="wave", object_id=wave.id, org_id=wave.org_id,
               summary={"name": wave.name, "source": "demo"})

    chat_ids = iter(range(-72_000_000_001, -72_000_100_000, -1))
    for key, name, platform, org_code, sources, wave_no, state in GROUPS:
        org = orgs[org_code]
        members = []
        for src in sources:
            people = staff[src]
            members.extend(people if src == org_code else people[:2])
        members = list({m.id: m for m in members}.values())
        group = SourceGroup(key=key, name=name, platform=platform, org_id=org.id,
                            owner_email=staff[org_code][0].email, member_count=len(members),
                            created_at=start, updated_at=start)
        wave = waves.get(wave_no)
        has_chat = state not in ("none", "planned")
        chat = None
        if has_chat:
            chat = MaxChat(chat_id=next(chat_ids), title=name, org_id=org.id,
                           status="discovered" if state == "discovered" else "linked",
                           added_by_name=staff[org_code][0].full_name,
                           added_by_max_user_id=staff[org_code][0].max_user_id,
                           added_at=(wave.invite_at if wave else now - 2 * day),
                           bot_is_admin=True, bot_permissions=FULL_RIGHTS,
                           checked_at=now - timedelta(hours=3), created_at=start)
            if state == "missing_rights":
                chat.bot_permissions = "write"
            if state == "removed":
                chat.status = "removed"
                chat.removed_at = now - day
            session.add(chat)
            session.flush()
            if state != "discovered":
                group.max_chat_id = chat.id
                group.linked_at = chat.added_at + timedelta(hours=2)
        if wave is not None:
            group.wave_id = wave.id
        session.add(group)
        session.flush()
        if state == "removed":
            flag_group(group, BOT_REMOVED)
        stats["groups"] += 1
        invited = wave is not None and wave.invite_at < now and state != "failed_invite"
        adding = group.max_chat_id is not None and wave is not None and wave.add_members_at < now
        for i, emp in enumerate(members):
            gm = GroupMember(group_id=group.id, employee_id=emp.id, created_at=start)
            if invited and emp.max_user_id is None:
                gm.invited_at = wave.invite_at + timedelta(minutes=10)
                if wave.invite_at < now - 4 * day:
                    gm.reminded_at, gm.reminder_count = wave.invite_at + 3 * day, 1
            elif invited:
                gm.invited_at = wave.invite_at + timedelta(minutes=10)
            gm.state = states.linked_state_for(emp.max_user_id)
            if adding and emp.max_user_id is not None and state != "removed":
                if state == "failed_add" and i % 3 == 1:
                    gm.reason = ADD_ERRORS[(i // 3) % len(ADD_ERRORS)]
                    gm.state, gm.attempts = ("retrying" if gm.reason == "max.soft_failure"
                                             else "unaddable"), 3
                else:
                    gm.state, gm.attempts = ("joined" if i == 0 else "added"), 1
                    gm.by_tool = gm.state == "added"
                    gm.added_at = max(emp.linked_at, wave.add_members_at) + timedelta(hours=1)
                    gm.added_at = min(gm.added_at, now)
            gm.state_at = gm.added_at or start
            session.add(gm)
            stats["memberships"] += 1
        if wave is not None:
            _demo_steps(session, group, wave, state, now)
    session.flush()

    # An unlinked chat the bot was just added to, waiting to be mapped.
    session.add(MaxChat(chat_id=next(chat_ids), title="Новый чат: ЖКХ района", status="discovered",
                        org_id=orgs["MO-REC"].id, added_by_name=staff["MO-REC"][0].full_name,
                        added_at=now - timedelta(hours=5), bot_is_admin=False,
                        bot_permissions="", created_at=now - timedelta(hours=5)))

    create_user(ADMIN[0], ADMIN[1], "admin", full_name="Демо-администратор")
    create_user(COORDINATOR[0], COORDINATOR[1], "coordinator", [COORDINATOR[2]],
                full_name="Демо-координатор (Лесногорск)")
    create_user(AUDITOR[0], AUDITOR[1], "auditor", full_name="Демо-аудитор")
    record("demo.seed", object_type="region", object_id=REGION_CODE, summary=stats)
    session.flush()
    today = local_today(now)
    for back in range(30, -1, -1):
        take_snapshots(today - timedelta(days=back), commit=False)
    session.commit()
    return stats


def _demo_steps(session, group, wave, state, now) -> None:
    """Steps for one demo group, in the state that the group's scenario describes."""
    due = {"invite": wave.invite_at, "add_members": wave.add_members_at,
           "announce": wave.announce_at, "parallel_run": wave.announce_at + timedelta(hours=1),
           "cutover": wave.cutover_at}
    special = {
        ("failed_invite", "invite"): ("failed", "SMTP 451: временная ошибка почтового сервера, "
                                                "попытки исчерпаны"),
        ("failed_add", "add_members"): ("failed", "3 участника не добавлены: см. причины"),
        ("waiting_cutover", "cutover"): ("waiting", "Подтвердите закрытие старой группы"),
        ("waiting_announce", "announce"): ("waiting", "Подтвердите, что уведомление о переходе "
                                                      "отправлено в старую группу"),
        ("adding", "add_members"): ("running", None),
        ("overdue", "cutover"): ("due", None),
        ("removed", "announce"): ("paused", "Приостановлено: бот удалён из чата"),
    }
    blocked = False
    for kind in STEP_KINDS:
        at = due[kind]
        step = Step(group_id=group.id, wave_id=wave.id, kind=kind, due_at=at, next_attempt_at=at,
                    changed_by="job:demo", updated_at=min(at, now))
        status, text = special.get((state, kind), (None, None))
        if blocked or at >= now:
            step.status = "pending"
        elif status is None:
            step.status, step.attempts = "succeeded", 1
            step.started_at, step.finished_at = at, at + timedelta(minutes=3)
        else:
            blocked = True
            step.status, step.started_at = status, at
            step.attempts = 5 if status == "failed" else 1
            if status == "failed":
                step.last_error = text
            else:
                step.note = text
            if status == "running":
                # A lease that ends soon: `make run`'s runner takes the step over in a minute.
                step.claimed_by, step.claimed_until = "runner-1", now + timedelta(minutes=1)
        session.add(step)


# --- region scale -----------------------------------------------------------------------------

def seed_region(orgs: int = 2000, groups: int = 10000, employees: int = 60000,
                memberships: int = 300000, audit_events: int = 1_000_000, waves: int = 40,
                now: datetime | None = None, snapshot_days: int = 30,
                plan_all: bool = False) -> dict:
    """Bulk region-scale data under the demo region root (which must exist)."""
    session = get_session()
    engine = get_engine()
    rng = random.Random(7)
    now = now or utcnow()
    start = now - timedelta(days=40)
    t0 = _time.monotonic()
    root = session.exec(select(Organisation).where(Organisation.code == REGION_CODE)).one()
    session.commit()
    org_t, emp_t = Organisation.__table__, Employee.__table__
    grp_t = SourceGroup.__table__
    chat_t, wave_t, step_t = MaxChat.__table__, Wave.__table__, Step.__table__

    with engine.begin() as conn:
        # Organisations: municipalities, their territorial units, then leaves.
        oid = next_id(conn, org_t)
        n1 = max(1, round(orgs / 100))
        n2 = min(max(0, orgs - n1), n1 * 9)
        n3 = max(0, orgs - n1 - n2)
        rows, level1, level2, leaves = [], [], [], []
        for i in range(n1):
            town = TOWNS[i % len(TOWNS)][:-2] + "ого"
            town += f" {i // len(TOWNS) + 1}-го" if i >= len(TOWNS) else ""
            rows.append(_org_row(oid, f"RS-M{i + 1:03d}", f"Администрация {town} округа",
                                 root, start))
            level1.append(rows[-1])
            oid += 1
        for i in range(n2):
            parent = level1[i % n1]
            rows.append(_org_row(oid, f"RS-T{i + 1:04d}",
                                 f"Территориальное управление № {i // n1 + 1} ({parent['name']})",
                                 parent, start))
            level2.append(rows[-1])
            oid += 1
        parents = level2 or level1
        for i in range(n3):
            parent = parents[i % len(parents)]
            tmpl, kind = LEAF_KINDS[i % len(LEAF_KINDS)]
            rows.append(_org_row(oid, f"RS-{kind[:3].upper()}{i + 1:05d}",
                                 tmpl.format(n=i + 1), parent, start))
            leaves.append(rows[-1])
            oid += 1
        for r in rows:
            r.pop("_obj", None)
        Bulk(conn, org_t).write(rows)
        all_orgs = rows
    say(f"  organisations: {len(all_orgs)} ({_time.monotonic() - t0:.1f}s)")

    with engine.begin() as conn:
        eid = next_id(conn, emp_t)
        emp_rows, by_org = [], {}
        first_eid = eid
        for i in range(employees):
            org = all_orgs[i % len(all_orgs)]
            full_name, sur, initials = person(rng)
            linked = rng.random() < 0.55
            emp_rows.append({
                "id": eid, "email": f"{sur}.{initials}.{eid}@{org['code'].lower()}.rs.example",
                "full_name": full_name, "position": rng.choice(POSITIONS), "phone": None,
                "org_id": org["id"], "max_user_id": 2_000_000_000 + eid if linked else None,
                "linked_at": start + timedelta(days=5 + rng.random() * 34.9) if linked else None,
                "created_at": start, "updated_at": start})
            by_org.setdefault(org["id"], []).append((eid, linked))
            eid += 1
        # Multi-row statements on SQLite: the full-text index's trigger (migration 0039)
        # costs several times more with one statement per row.
        bulk_insert(conn, emp_t, emp_rows)
        # Heads of organisations: the first employee of each.
        for org in all_orgs:
            people = by_org.get(org["id"])
            if people:
                org["head"] = emp_rows[people[0][0] - first_eid]["email"]
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("UPDATE organisation SET head_email = v.head FROM (SELECT "
                                 "unnest(CAST(:ids AS integer[])) id, unnest(CAST(:heads AS "
                                 "text[])) head) v WHERE organisation.id = v.id"),
                         {"ids": [o["id"] for o in all_orgs if "head" in o],
                          "heads": [o["head"] for o in all_orgs if "head" in o]})
        else:
            conn.execute(sa.update(org_t).where(org_t.c.id == sa.bindparam("oid"))
                         .values(head_email=sa.bindparam("head")),
                         [{"oid": o["id"], "head": o["head"]} for o in all_orgs if "head" in o])
        del emp_rows
    say(f"  employees: {employees} ({_time.monotonic() - t0:.1f}s)")

    with engine.begin() as conn:
        wid = next_id(conn, wave_t)
        wave_rows = []
        for i in range(waves):
            base = now - timedelta(days=35) + timedelta(days=i * 50 / max(1, waves))
            deadline = base + timedelta(days=30)
            status = "planned" if base > now else "active"
            wave_rows.append({
                "id": wid + i, "name": f"Волна {i + 1}", "org_id": level1[i % n1]["id"],
                "status": status, "invite_at": base, "add_members_at": base + timedelta(days=4),
                "announce_at": base + timedelta(days=10), "cutover_at": base + timedelta(days=20),
                "deadline": deadline, "created_by_id": None, "created_at": start,
                "updated_at": start})
        Bulk(conn, wave_t).write(wave_rows)

        gid, cid = next_id(conn, grp_t), next_id(conn, chat_t)
        chat_no = (conn.execute(sa.select(sa.func.min(chat_t.c.chat_id))).scalar() or 0)
        chat_no = min(chat_no, -80_000_000_000) - 1
        group_rows, chat_rows, gm_rows, step_rows = [], [], [], []
        per_group = max(1, memberships // max(1, groups))
        sid = next_id(conn, step_t)
        orgs_with_staff = [o for o in all_orgs if o["id"] in by_org]
        n_members = 0
        for i in range(groups):
            org = orgs_with_staff[i % len(orgs_with_staff)]
            # Members come from the organisation and its parent (a school's group has the
            # territorial unit's staff too), so groups reach the requested average size.
            people = by_org[org["id"]] + by_org.get(org["parent_id"], [])
            roll = rng.random()
            chat_id = None
            if roll < 0.55:
                status = "removed" if roll < 0.01 else "linked"
                perms = "write" if 0.01 <= roll < 0.02 else FULL_RIGHTS
                chat_rows.append({
                    "id": cid, "chat_id": chat_no,
                    "title": f"{GROUP_NAMES[i % 10]} ({org['code']})",
                    "status": status, "org_id": org["id"], "added_by_max_user_id": None,
                    "added_by_name": None, "added_at": start + timedelta(days=3),
                    "removed_at": now if status == "removed" else None, "bot_is_admin": True,
                    "bot_permissions": perms, "checked_at": now, "last_event_ts": 0,
                    "created_at": start})
                chat_id = cid
                cid += 1
                chat_no -= 1
            planned = plan_all or (chat_id and rng.random() < 0.9)
            wave = wave_rows[i % waves] if (planned and waves) else None
            group_rows.append({
                "id": gid, "key": f"rs-g{gid}", "name": f"{GROUP_NAMES[i % 10]} — {org['name']}",
                "platform": rng.choice(("whatsapp",) * 7 + ("telegram",) * 2 + ("viber",)),
                "org_id": org["id"], "owner_email": None, "max_chat_id": chat_id,
                "linked_at": start + timedelta(days=4) if chat_id else None,
                "linked_by_id": None, "wave_id": wave["id"] if wave else None,
                "needs_attention": roll < 0.01, "attention_reason":
                    ATTENTION_BOT_REMOVED if roll < 0.01 else None,
                "member_count": 0, "created_at": start, "updated_at": start})
            size = min(len(people), max(1, int(per_group * (0.7 + 0.6 * rng.random()))))
            chosen = rng.sample(people, size) if size < len(people) else people
            group_rows[-1]["member_count"] = len(chosen)
            adding = chat_id is not None and wave is not None and wave["add_members_at"] < now
            for emp_id, linked in chosen:
                status = "linked" if linked else "not_linked"
                err, added_at = None, None
                if adding and linked:
                    r = rng.random()
                    if r < 0.03:
                        status, err = "unaddable", ADD_ERRORS[int(r * 100) % 2]
                    else:
                        status, added_at = "added", wave["add_members_at"] + timedelta(hours=2)
                gm_rows.append({
                    "group_id": gid, "employee_id": emp_id,
                    "invited_at": wave["invite_at"] if wave and wave["invite_at"] < now else None,
                    "reminded_at": None, "reminder_count": 0, "state": status,
                    "state_at": added_at or start, "reason": err, "next_attempt_at": None,
                    "by_tool": status == "added",
                    "attempts": 1 if status in ("added", "unaddable") else 0,
                    "added_at": added_at, "created_at": start})
            n_members += len(chosen)
            if wave is not None:
                for kind, at in zip(STEP_KINDS, (wave["invite_at"], wave["add_members_at"],
                                                 wave["announce_at"],
                                                 wave["announce_at"] + timedelta(hours=1),
                                                 wave["cutover_at"]), strict=True):
                    st = "succeeded" if at < now else "pending"
                    r = rng.random()
                    if st == "succeeded" and r < 0.02:
                        st = "failed"
                    elif st == "succeeded" and kind in ("announce", "cutover") and r < 0.1:
                        st = "waiting"
                    step_rows.append({
                        "id": sid, "group_id": gid, "wave_id": wave["id"], "kind": kind,
                        "status": st, "due_at": at, "next_attempt_at": at,
                        "attempts": 0 if st == "pending" else 1,
                        "last_error": "Max API: 503 Service Unavailable"
                        if st == "failed" else None,
                        "started_at": at if st != "pending" else None,
                        "finished_at": at + timedelta(minutes=5) if st == "succeeded" else None,
                        "claimed_by": None, "claimed_until": None, "confirmed_at": None,
                        "confirmed_by_id": None, "note": None, "changed_by": "job:demo",
                        "updated_at": min(at, now)})
                    sid += 1
            gid += 1
            if len(gm_rows) >= 50000:
                _flush_groups(conn, chat_rows, group_rows, gm_rows, step_rows)
        _flush_groups(conn, chat_rows, group_rows, gm_rows, step_rows)
    say(f"  groups: {groups}, memberships: {n_members}, steps and chats "
         f"({_time.monotonic() - t0:.1f}s)")

    written = bulk_audit(audit_events, [o["id"] for o in all_orgs], now, rng, t0)
    fix_sequences()
    analyze()
    today = local_today(now)
    for back in range(snapshot_days - 1, -1, -1):
        take_snapshots(today - timedelta(days=back))
    say(f"  snapshots: {snapshot_days} days ({_time.monotonic() - t0:.1f}s)")
    return {"organisations": len(all_orgs), "employees": employees, "groups": groups,
            "memberships": n_members, "audit_events": written}


def _org_row(oid: int, code: str, name: str, parent: dict | Organisation, start) -> dict:
    ppath = parent["path"] if isinstance(parent, dict) else parent.path
    pid = parent["id"] if isinstance(parent, dict) else parent.id
    path = f"{ppath}{oid}/"
    return {"id": oid, "code": code, "name": name, "parent_id": pid, "path": path,
            "depth": path.count("/") - 2, "head_email": None, "created_at": start,
            "updated_at": start}


def _flush_groups(conn, chat_rows, group_rows, gm_rows, step_rows) -> None:
    Bulk(conn, MaxChat.__table__).write(chat_rows)
    Bulk(conn, SourceGroup.__table__).write(group_rows)
    Bulk(conn, GroupMember.__table__).write(gm_rows)
    Bulk(conn, Step.__table__).write(step_rows)
    for rows in (chat_rows, group_rows, gm_rows, step_rows):
        rows.clear()


def snapshot_today_if_missing() -> None:
    """A demo started again days later still shows today's point on the charts."""
    today = local_today()
    if get_session().exec(select(ProgressSnapshot).where(ProgressSnapshot.day == today)
                          .limit(1)).first() is None:
        take_snapshots(today)
        click.echo("Today's progress snapshot taken.")


