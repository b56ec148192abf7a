"""``flask demo seed``: a small fictional demo region, or region-scale data for benchmarks.

The small region is written through the services (organisations, users) and models and is
idempotent: a second run changes nothing. ``--scale region`` adds thousands of
organisations, groups, employees, memberships and audit events with bulk inserts (COPY on
PostgreSQL), the audit events chained with the same hash as :func:`record`.
"""

from __future__ import annotations

import json
import random
import sys
import time as _time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import click
import sqlalchemy as sa
from flask.cli import with_appcontext
from sqlmodel import select

from migrator.audit.models import AuditEvent, AuditHead
from migrator.audit.service import SYSTEM, acting_as, canonical, compute_hash, record
from migrator.db import get_engine, get_session, is_sqlite, utcnow
from migrator.groups.attention import BOT_REMOVED, reason
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import REQUIRED_PERMISSIONS, MaxChat, MaxChatMember
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.waves.models import STEP_KINDS, Step, Wave

ATTENTION_BOT_REMOVED = reason(BOT_REMOVED)

REGION_CODE = "REGION"
REGION_NAME = "Северо-Уральская область"
ADMIN = ("admin@example.org", "demo-admin-2026")
COORDINATOR = ("coordinator@example.org", "demo-coord-2026", "MO-LES")
AUDITOR = ("auditor@example.org", "demo-audit-2026")
FULL_RIGHTS = ",".join(REQUIRED_PERMISSIONS)

# code, name, parent code, mail domain, number of staff
ORGS = [
    ("REGION", "Правительство Северо-Уральской области", None, "pravo.sev-ural.example", 10),
    ("MINOBR", "Министерство образования Северо-Уральской области", "REGION",
     "minobr.sev-ural.example", 9),
    ("MINZKH", "Министерство энергетики и ЖКХ Северо-Уральской области", "REGION",
     "minzkh.sev-ural.example", 8),
    ("MINZDRAV", "Министерство здравоохранения Северо-Уральской области", "REGION",
     "minzdrav.sev-ural.example", 8),
    ("ZDRAV-LCGB", "ГБУЗ «Лесногорская центральная городская больница»", "MINZDRAV",
     "lcgb.example.org", 8),
    ("MFC", "ГАУ «МФЦ Северо-Уральской области»", "REGION", "mfc.sev-ural.example", 8),
    ("MO-LES", "Администрация Лесногорского городского округа", "REGION",
     "les-adm.example.org", 9),
    ("MO-LES-SCH3", "МАОУ «Средняя общеобразовательная школа № 3» г. Лесногорска", "MO-LES",
     "school3-les.example.org", 9),
    ("MO-LES-TEPLO", "МУП «Лесногорские тепловые сети»", "MO-LES", "teplo-les.example.org", 8),
    ("MO-LES-MFC", "Филиал МФЦ в г. Лесногорске", "MO-LES", "mfc.sev-ural.example", 6),
    ("MO-REC", "Администрация Реченского муниципального района", "REGION",
     "rech-adm.example.org", 8),
    ("MO-REC-SCH1", "МБОУ «Реченская средняя школа № 1»", "MO-REC", "school1-rech.example.org",
     8),
    ("MO-REC-VODO", "МУП «Реченский водоканал»", "MO-REC", "vodokanal-rech.example.org", 7),
    ("MO-REC-MFC", "Филиал МФЦ в с. Речное", "MO-REC", "mfc.sev-ural.example", 6),
]

HEAD_POSITIONS = {
    "REGION": "Руководитель аппарата правительства", "MINOBR": "Министр образования",
    "MINZKH": "Министр энергетики и ЖКХ", "MINZDRAV": "Министр здравоохранения",
    "ZDRAV-LCGB": "Главный врач", "MFC": "Директор", "MO-LES": "Глава городского округа",
    "MO-LES-SCH3": "Директор школы", "MO-LES-TEPLO": "Директор", "MO-LES-MFC": "Начальник филиала",
    "MO-REC": "Глава района", "MO-REC-SCH1": "Директор школы", "MO-REC-VODO": "Директор",
    "MO-REC-MFC": "Начальник филиала",
}
POSITIONS = ["Заместитель руководителя", "Начальник отдела", "Консультант", "Главный специалист",
             "Ведущий специалист", "Специалист 1 категории", "Инженер", "Бухгалтер",
             "Юрисконсульт", "Секретарь", "Учитель", "Оператор"]

# key, name, platform, org code, member source org codes, wave, state
GROUPS = [
    ("wa-gov-shtab", "Оперативный штаб правительства", "whatsapp", "REGION",
     ["REGION", "MINOBR", "MINZKH", "MINZDRAV", "MFC"], 1, "done"),
    ("wa-gov-press", "Пресс-служба: согласования", "whatsapp", "REGION", ["REGION"], 1, "done"),
    ("wa-minobr-ruk", "Руководство Минобразования", "whatsapp", "MINOBR", ["MINOBR"], 1, "done"),
    ("tg-minobr-dir", "Директора школ области", "telegram", "MINOBR",
     ["MINOBR", "MO-LES-SCH3", "MO-REC-SCH1"], 1, "waiting_cutover"),
    ("wa-minzkh-disp", "Диспетчерская ЖКХ", "whatsapp", "MINZKH",
     ["MINZKH", "MO-LES-TEPLO", "MO-REC-VODO"], 1, "failed_add"),
    ("wa-minzdrav-ruk", "Минздрав: оперативные вопросы", "whatsapp", "MINZDRAV",
     ["MINZDRAV", "ZDRAV-LCGB"], 1, "missing_rights"),
    ("tg-lcgb-smena", "ЦГБ: дежурная смена", "telegram", "ZDRAV-LCGB", ["ZDRAV-LCGB"], None,
     "discovered"),
    ("wa-mfc-ruk", "МФЦ: руководители филиалов", "whatsapp", "MFC",
     ["MFC", "MO-LES-MFC", "MO-REC-MFC"], 4, "overdue"),
    ("wa-les-adm", "Администрация Лесногорска", "whatsapp", "MO-LES", ["MO-LES"], 2,
     "waiting_announce"),
    ("wa-les-sch3-ped", "Школа № 3: педсовет", "whatsapp", "MO-LES-SCH3", ["MO-LES-SCH3"], 2,
     "adding"),
    ("wa-les-sch3-par", "Школа № 3: классные руководители", "whatsapp", "MO-LES-SCH3",
     ["MO-LES-SCH3"], 2, "failed_invite"),
    ("tg-les-teplo", "Тепловые сети: аварийная служба", "telegram", "MO-LES-TEPLO",
     ["MO-LES-TEPLO"], 2, "removed"),
    ("wa-les-mfc", "МФЦ Лесногорск: смена", "whatsapp", "MO-LES-MFC", ["MO-LES-MFC"], 2,
     "adding"),
    ("wa-rec-adm", "Администрация Реченского района", "whatsapp", "MO-REC", ["MO-REC"], 3,
     "planned"),
    ("wa-rec-sch1", "Реченская школа № 1: учителя", "whatsapp", "MO-REC-SCH1", ["MO-REC-SCH1"],
     3, "planned"),
    ("tg-rec-vodo", "Водоканал: бригады", "telegram", "MO-REC-VODO", ["MO-REC-VODO"], 3,
     "planned"),
    ("wa-rec-mfc", "МФЦ Речное", "whatsapp", "MO-REC-MFC", ["MO-REC-MFC"], None, "none"),
    ("vb-rec-zkh", "ЖКХ района (Viber)", "viber", "MO-REC", ["MO-REC", "MO-REC-VODO"], None,
     "none"),
    ("wa-minzkh-energo", "Энергетики: штаб зимы", "whatsapp", "MINZKH", ["MINZKH"], None, "none"),
]

MALE = ["Александр", "Алексей", "Андрей", "Дмитрий", "Евгений", "Иван", "Игорь", "Константин",
        "Михаил", "Николай", "Олег", "Павел", "Роман", "Сергей", "Юрий", "Владимир", "Артём"]
FEMALE = ["Анна", "Елена", "Екатерина", "Ирина", "Марина", "Мария", "Наталья", "Ольга",
          "Светлана", "Татьяна", "Юлия", "Галина", "Людмила", "Дарья", "Вера"]
PATRONYMICS = [("Александрович", "Александровна"), ("Алексеевич", "Алексеевна"),
               ("Андреевич", "Андреевна"), ("Викторович", "Викторовна"),
               ("Владимирович", "Владимировна"), ("Геннадьевич", "Геннадьевна"),
               ("Дмитриевич", "Дмитриевна"), ("Евгеньевич", "Евгеньевна"),
               ("Иванович", "Ивановна"), ("Игоревич", "Игоревна"), ("Михайлович", "Михайловна"),
               ("Николаевич", "Николаевна"), ("Олегович", "Олеговна"), ("Петрович", "Петровна"),
               ("Сергеевич", "Сергеевна"), ("Юрьевич", "Юрьевна")]
SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
            "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
            "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев",
            "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев",
            "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров",
            "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин",
            "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков",
            "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев", "Герасимов", "Богданов",
            "Осипов", "Сидоров", "Матвеев", "Титов", "Марков", "Миронов", "Крылов", "Куликов",
            "Карпов", "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов", "Казаков",
            "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов",
            "Мартынов", "Ефимов", "Федотов", "Щербаков", "Назаров", "Калинин", "Исаев",
            "Чернышёв", "Быков", "Маслов", "Родионов", "Коновалов", "Лазарев", "Воронин",
            "Климов", "Филатов", "Пономарёв", "Голубев", "Кудрявцев", "Прохоров", "Наумов",
            "Потапов", "Журавлёв", "Овчинников", "Трофимов", "Леонов", "Соболев", "Ермаков",
            "Колесников", "Гончаров", "Емельянов", "Никифоров", "Грачёв", "Котов", "Гришин",
            "Ефремов", "Архипов", "Громов", "Кириллов", "Малышев", "Панов", "Моисеев", "Румянцев"]
_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n",
                      "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y",
                      "", "e", "yu", "ya"], strict=True))

ADD_ERRORS = [
    "Настройки приватности пользователя запрещают добавление в чаты",
    "user.not.found: пользователь удалил аккаунт Max",
    "chat.member.limit: превышен лимит приглашений, повтор позже",
]


def translit(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())


def person(rng: random.Random) -> tuple[str, str, str]:
    """(full name, transliterated surname, transliterated initials), genders matching."""
    surname = rng.choice(SURNAMES)
    male, female = rng.choice(PATRONYMICS)
    if rng.random() < 0.55:
        first, patronymic, surname = rng.choice(FEMALE), female, surname + "а"
    else:
        first, patronymic = rng.choice(MALE), male
    initials = translit(first[0]) + translit(patronymic[0])
    return f"{surname} {first} {patronymic}", translit(surname), initials


# --- the small demo region --------------------------------------------------------------------


def demo_present() -> bool:
    session = get_session()
    from migrator.auth.models import User

    return (session.exec(select(Organisation).where(Organisation.code == REGION_CODE)).first()
            is not None and session.exec(select(User).where(User.email == ADMIN[0])).first()
            is not None)


def seed_small(now: datetime | None = None) -> dict:
    """Create the demo region, its people, groups, chats, waves, steps and 30 days of
    snapshots in one transaction. Returns counts. Call only when :func:`demo_present` is
    false."""
    from migrator.auth.service import create_user
    from migrator.org.service import save_organisation
    from migrator.progress.service import local_today, take_snapshots

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
        if state == "removed":
            group.needs_attention = True
            group.attention_reason = ATTENTION_BOT_REMOVED
        if wave is not None:
            group.wave_id = wave.id
        session.add(group)
        session.flush()
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
            if adding and emp.max_user_id is not None and state != "removed":
                if state == "failed_add" and i % 3 == 1:
                    gm.add_status, gm.add_attempts = "failed", 3
                    gm.add_error = ADD_ERRORS[(i // 3) % len(ADD_ERRORS)]
                else:
                    gm.add_status, gm.add_attempts = ("already" if i == 0 else "added"), 1
                    gm.added_at = max(emp.linked_at, wave.add_members_at) + timedelta(hours=1)
                    gm.added_at = min(gm.added_at, now)
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

TOWNS = ["Лесногорский", "Реченский", "Каменский", "Озёрный", "Заречный", "Северный", "Горный",
         "Берёзовский", "Сосновский", "Кедровый", "Светлый", "Таёжный", "Полевской", "Липовский",
         "Ключевской", "Медногорский", "Хвойный", "Солнечный", "Уральский", "Боровской"]
LEAF_KINDS = [("МБОУ «Средняя школа № {n}»", "school"), ("МБДОУ «Детский сад № {n}»", "kinder"),
              ("МУП «Водоканал-{n}»", "vodokanal"), ("Филиал МФЦ № {n}", "mfc"),
              ("ГБУЗ «Поликлиника № {n}»", "clinic"), ("МКУ «Служба ЖКХ № {n}»", "zkh"),
              ("МБУК «Дом культуры № {n}»", "culture")]
GROUP_NAMES = ["Оперативные вопросы", "Руководство", "Дежурная смена", "Педсовет",
               "Аварийная служба", "Бухгалтерия", "Совещания", "Объявления для сотрудников",
               "Отдел кадров", "Штаб"]
AUDIT_ACTIONS = [("employee.invite", "employee"), ("step.succeeded", "step"),
                 ("member.added", "employee"), ("mail.sent", "outbox"), ("max.call", "chat"),
                 ("group.link", "group"), ("auth.login", "user"), ("step.failed", "step")]


class Bulk:
    """Fast appends to one table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, conn, table: sa.Table):
        self.conn, self.table = conn, table
        self.pg = conn.dialect.name == "postgresql"

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        if not self.pg:
            self.conn.execute(self.table.insert(), rows)
            return
        cols = list(rows[0])
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
                f'COPY "{self.table.name}" ({", ".join(cols)}) FROM STDIN') as copy:
            for r in rows:
                copy.write_row([_naive(r[c]) for c in cols])


def _naive(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def _next_id(conn, table) -> int:
    return (conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1


def _say(msg: str) -> None:
    click.echo(msg)
    sys.stdout.flush()


def seed_region(orgs: int = 2000, groups: int = 10000, employees: int = 60000,
                memberships: int = 300000, audit_events: int = 1_000_000, waves: int = 40,
                now: datetime | None = None, snapshot_days: int = 30) -> dict:
    """Bulk region-scale data under the demo region root (which must exist)."""
    from migrator.progress.service import local_today, take_snapshots

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
        oid = _next_id(conn, org_t)
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
    _say(f"  organisations: {len(all_orgs)} ({_time.monotonic() - t0:.1f}s)")

    with engine.begin() as conn:
        eid = _next_id(conn, emp_t)
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
        for i in range(0, len(emp_rows), 20000):
            Bulk(conn, emp_t).write(emp_rows[i:i + 20000])
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
    _say(f"  employees: {employees} ({_time.monotonic() - t0:.1f}s)")

    with engine.begin() as conn:
        wid = _next_id(conn, wave_t)
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

        gid, cid = _next_id(conn, grp_t), _next_id(conn, chat_t)
        chat_no = (conn.execute(sa.select(sa.func.min(chat_t.c.chat_id))).scalar() or 0)
        chat_no = min(chat_no, -80_000_000_000) - 1
        group_rows, chat_rows, gm_rows, step_rows = [], [], [], []
        per_group = max(1, memberships // max(1, groups))
        sid = _next_id(conn, step_t)
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
            wave = wave_rows[i % waves] if (chat_id and rng.random() < 0.9 and waves) else None
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
                status, err, added_at = "pending", None, None
                if adding and linked:
                    r = rng.random()
                    if r < 0.03:
                        status, err = "failed", ADD_ERRORS[int(r * 100) % 3]
                    else:
                        status, added_at = "added", wave["add_members_at"] + timedelta(hours=2)
                gm_rows.append({
                    "group_id": gid, "employee_id": emp_id,
                    "invited_at": wave["invite_at"] if wave and wave["invite_at"] < now else None,
                    "reminded_at": None, "reminder_count": 0, "add_status": status,
                    "add_error": err, "add_attempts": 1 if status != "pending" else 0,
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
    _say(f"  groups: {groups}, memberships: {n_members}, steps and chats "
         f"({_time.monotonic() - t0:.1f}s)")

    written = bulk_audit(audit_events, [o["id"] for o in all_orgs], now, rng, t0)
    _fix_sequences()
    _analyze()
    today = local_today(now)
    for back in range(snapshot_days - 1, -1, -1):
        take_snapshots(today - timedelta(days=back))
    _say(f"  snapshots: {snapshot_days} days ({_time.monotonic() - t0:.1f}s)")
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


def bulk_audit(n: int, org_ids: list[int], now: datetime, rng: random.Random,
               t0: float | None = None, batch: int = 50000) -> int:
    """Append ``n`` synthetic events to the hash chain, in committed batches. Each batch
    takes the chain's head row first, so the chain stays linear and verifiable."""
    engine = get_engine()
    t0 = t0 if t0 is not None else _time.monotonic()
    table = AuditEvent.__table__
    written = 0
    span = timedelta(days=30).total_seconds()
    while written < n:
        size = min(batch, n - written)
        with engine.begin() as conn:
            head = conn.execute(
                sa.update(AuditHead).where(AuditHead.id == 1)
                .values(last_seq=AuditHead.last_seq)
                .returning(AuditHead.last_seq, AuditHead.last_hash)).one()
            seq, prev = head.last_seq, head.last_hash
            last_at = conn.execute(sa.select(sa.func.max(table.c.created_at))).scalar()
            last_at = last_at.replace(tzinfo=UTC) if last_at and last_at.tzinfo is None \
                else last_at
            base = now - timedelta(days=30)
            rows = []
            for k in range(size):
                seq += 1
                at = base + timedelta(seconds=span * (written + k) / max(1, n))
                if last_at is not None and at <= last_at:
                    at = last_at + timedelta(microseconds=1)
                last_at = at
                action, otype = AUDIT_ACTIONS[(seq * 7) % len(AUDIT_ACTIONS)]
                ev = SimpleNamespace(
                    seq=seq, created_at=at, actor_type="job", actor_id="demo",
                    actor_label="demo generator", action=action, object_type=otype,
                    object_id=str(rng.randint(1, 100000)), org_id=rng.choice(org_ids),
                    summary=canonical({"n": seq % 97, "source": "demo"}), request_id=None,
                    client_ip=None, prev_hash=prev)
                ev.hash = compute_hash(ev)
                prev = ev.hash
                row = dict(vars(ev))
                rows.append(row)
            Bulk(conn, table).write(rows)
            conn.execute(sa.update(AuditHead).where(AuditHead.id == 1)
                         .values(last_seq=seq, last_hash=prev))
        written += size
        _say(f"  audit events: {written}/{n} ({_time.monotonic() - t0:.1f}s)")
    return written


def _fix_sequences() -> None:
    engine = get_engine()
    if is_sqlite(engine):
        return
    with engine.begin() as conn:
        for table in ("organisation", "employee", "source_group", "max_chat", "wave", "step",
                      "audit_event"):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))


def _analyze() -> None:
    engine = get_engine()
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        else:  # VACUUM too: index-only scans need the visibility map of the new rows
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE")


def _snapshot_today_if_missing() -> None:
    """A demo started again days later still shows today's point on the charts."""
    from migrator.progress.models import ProgressSnapshot
    from migrator.progress.service import local_today, take_snapshots

    today = local_today()
    if get_session().exec(select(ProgressSnapshot).where(ProgressSnapshot.day == today)
                          .limit(1)).first() is None:
        take_snapshots(today)
        click.echo("Today's progress snapshot taken.")


# --- the Max sandbox ---------------------------------------------------------------------------

# New chats that `stage-sandbox --new-chats` creates in the sandbox and adds the bot to, so the
# demo shows chat discovery: (fixed Max chat id, title, organisation whose staff are in it).
NEW_CHATS = [
    (-73_000_000_001, "Реченский район: оперативный штаб", "MO-REC"),
    (-73_000_000_002, "Школа № 3: родительский комитет", "MO-LES-SCH3"),
]
FALLBACK_OWNER = (909_999_999, "Владелец", "чата")  # owner of chats whose people are not in Max


def _sandbox_plan() -> dict:
    """What the sandbox should hold to match the database: users and chats (not removed)."""
    session = get_session()
    users: dict[int, dict] = {}
    for uid, name in session.exec(select(Employee.max_user_id, Employee.full_name)
                                  .where(Employee.max_user_id.is_not(None))).all():
        first, _, last = (name or "Сотрудник").partition(" ")
        users[uid] = {"user_id": uid, "first_name": first, "last_name": last or None}
    # People who cannot be added: privacy settings (the demo's failed additions say so).
    private = set(session.exec(
        select(Employee.max_user_id).join(GroupMember, GroupMember.employee_id == Employee.id)
        .where(GroupMember.add_status == "failed", GroupMember.add_error.contains("приватности"),
               Employee.max_user_id.is_not(None))).all())
    for uid in private:
        users[uid]["allow_add"] = False
    heads = dict(session.exec(select(Organisation.id, Employee.max_user_id)
                              .join(Employee, Employee.email == Organisation.head_email)
                              .where(Employee.max_user_id.is_not(None))).all())
    anyone = {}
    for org_id, uid in session.exec(select(Employee.org_id, Employee.max_user_id)
                                    .where(Employee.max_user_id.is_not(None))
                                    .order_by(Employee.id)).all():
        anyone.setdefault(org_id, uid)
    chats = []
    for chat in session.exec(select(MaxChat).where(MaxChat.status != "removed")
                             .order_by(MaxChat.id)).all():
        owner = chat.added_by_max_user_id if chat.added_by_max_user_id in users else None
        owner = owner or heads.get(chat.org_id) or anyone.get(chat.org_id) or FALLBACK_OWNER[0]
        members = set(session.exec(
            select(Employee.max_user_id)
            .join(GroupMember, GroupMember.employee_id == Employee.id)
            .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
            .where(SourceGroup.max_chat_id == chat.id,
                   GroupMember.add_status.in_(("added", "already")),
                   Employee.max_user_id.is_not(None))).all())
        members |= set(session.exec(select(MaxChatMember.max_user_id).where(
            MaxChatMember.chat_id == chat.id, MaxChatMember.is_present.is_(True))).all())
        members = {m for m in members if m in users}
        chats.append({
            "chat_id": chat.chat_id, "title": chat.title or f"Чат {chat.chat_id}",
            "owner_id": owner, "member_ids": sorted(members - {owner}),
            "is_admin": bool(chat.bot_is_admin),
            "permissions": sorted(chat.permissions) if chat.bot_is_admin else [],
        })
    if any(c["owner_id"] == FALLBACK_OWNER[0] for c in chats):
        uid, first, last = FALLBACK_OWNER
        users.setdefault(uid, {"user_id": uid, "first_name": first, "last_name": last})
    return {"users": users, "chats": chats, "orgs": {"heads": heads, "anyone": anyone}}


def stage_sandbox(sandbox_url: str, *, new_chats: bool = False, http=None) -> dict:
    """Mirror the database into the Max sandbox through its control surface: a user (same
    id, started the bot) per employee linked to Max, each chat that is not removed with the
    same id and title, its owner, the people already added, and the bot with the rights the
    database records. Only what is missing is created, so a second run changes nothing.

    Run it BEFORE the webhook is subscribed: the sandbox then keeps the resulting updates
    for long polling (which nobody does), and the app sees no ``bot_added`` for chats it
    already knows (no new "added" dates or audit events at every start). With
    ``new_chats``, also create :data:`NEW_CHATS` and add the bot to them (run it after
    subscribing, so the app discovers them). Returns counts of what was created."""
    import httpx

    base = sandbox_url.rstrip("/") + "/_sandbox"
    own = http is None
    http = http or httpx.Client(timeout=10)
    done = {"users": 0, "chats": 0, "members": 0, "bots": 0, "new_chats": 0}
    try:
        def call(method: str, path: str, body: dict | None = None) -> dict:
            resp = http.request(method, base + path, json=body)
            if resp.status_code >= 400:
                raise click.ClickException(
                    f"sandbox {method} {path}: {resp.status_code} {resp.text[:200]}")
            return resp.json()

        plan = _sandbox_plan()
        get_session().commit()
        have_users = {u["user_id"] for u in call("GET", "/users")["users"]}
        for uid, user in plan["users"].items():
            if uid not in have_users:
                call("POST", "/users", user)
                call("POST", f"/users/{uid}/start", {"payload": None})
                done["users"] += 1
        have = {c["chat_id"]: c for c in call("GET", "/chats")["chats"]}
        wanted = list(plan["chats"])
        if new_chats:
            known = {c["chat_id"] for c in wanted}
            heads, anyone = plan["orgs"]["heads"], plan["orgs"]["anyone"]
            codes = dict(get_session().exec(select(Organisation.code, Organisation.id)).all())
            for chat_id, title, code in NEW_CHATS:
                org_id = codes.get(code)
                owner = heads.get(org_id) or anyone.get(org_id)
                if chat_id in known or owner is None:
                    continue  # discovered in an earlier run (mirrored above), or nobody to own it
                staff = list(get_session().exec(
                    select(Employee.max_user_id).where(Employee.org_id == org_id,
                                                       Employee.max_user_id.is_not(None))
                    .order_by(Employee.id)).all())
                wanted.append({"chat_id": chat_id, "title": title, "owner_id": owner,
                               "member_ids": [u for u in staff[:4] if u != owner],
                               "is_admin": True, "permissions": list(REQUIRED_PERMISSIONS),
                               "new": True})
        for spec in wanted:
            current = have.get(spec["chat_id"])
            if current is None:
                current = call("POST", "/chats", {
                    "chat_id": spec["chat_id"], "title": spec["title"],
                    "owner_id": spec["owner_id"], "member_ids": spec["member_ids"]})
                done["chats"] += 1
                done["new_chats"] += bool(spec.get("new"))
            present = {m["user_id"] for m in current["members"]}
            for uid in spec["member_ids"]:
                if uid not in present:
                    call("POST", f"/chats/{spec['chat_id']}/members", {"user_id": uid})
                    done["members"] += 1
            if current.get("bot_status") != "active":
                call("POST", f"/chats/{spec['chat_id']}/bot", {
                    "permissions": spec["permissions"], "is_admin": spec["is_admin"],
                    "by_user_id": spec["owner_id"]})
                done["bots"] += 1
    finally:
        if own:
            http.close()
    return done


# --- CLI ------------------------------------------------------------------------------------------


@click.group("demo")
def demo_cli():
    """Demo data."""


@demo_cli.command("seed")
@click.option("--scale", type=click.Choice(["small", "region"]), default="small",
              show_default=True, help="region: thousands of organisations, for benchmarks")
@click.option("--orgs", default=2000, show_default=True, help="region scale: organisations")
@click.option("--groups", default=10000, show_default=True, help="region scale: source groups")
@click.option("--employees", default=60000, show_default=True, help="region scale: employees")
@click.option("--memberships", default=300000, show_default=True,
              help="region scale: group memberships")
@click.option("--audit-events", default=1_000_000, show_default=True,
              help="region scale: audit events")
@click.option("--waves", default=40, show_default=True, help="region scale: waves")
@with_appcontext
def seed_command(scale, orgs, groups, employees, memberships, audit_events, waves):
    """Seed a demo region (idempotent); print the demo sign-ins."""
    t0 = _time.monotonic()
    with acting_as(SYSTEM):
        if demo_present():
            click.echo("Demo region already present; nothing to do.")
            _snapshot_today_if_missing()
        else:
            stats = seed_small()
            click.echo("Demo region «{}» seeded: {}.".format(
                REGION_NAME, ", ".join(f"{k} {v}" for k, v in stats.items())))
        if scale == "region":
            session = get_session()
            if session.exec(select(Organisation).where(
                    Organisation.code.startswith("RS-M"))).first() is not None:
                click.echo("Region-scale data already present; nothing to do.")
            else:
                click.echo("Seeding region-scale data...")
                stats = seed_region(orgs=orgs, groups=groups, employees=employees,
                                    memberships=memberships, audit_events=audit_events,
                                    waves=waves)
                click.echo("Region-scale data: " + json.dumps(stats))
    click.echo(f"Sign in as {ADMIN[0]} / {ADMIN[1]} (administrator), "
               f"{COORDINATOR[0]} / {COORDINATOR[1]} (coordinator, {COORDINATOR[2]}), "
               f"{AUDITOR[0]} / {AUDITOR[1]} (auditor).")
    click.echo(f"Done in {_time.monotonic() - t0:.1f}s.")


@demo_cli.command("stage-sandbox")
@click.option("--sandbox-url", default=None, help="Default: MAX_API_URL.")
@click.option("--new-chats", is_flag=True,
              help="Also create two new chats with the bot in them (chat discovery).")
@with_appcontext
def stage_sandbox_command(sandbox_url, new_chats):
    """Mirror the demo's people and chats into the Max sandbox (idempotent)."""
    from flask import current_app

    done = stage_sandbox(sandbox_url or current_app.config["MAX_API_URL"], new_chats=new_chats)
    click.echo("Sandbox staged: " + ", ".join(f"{k} {v}" for k, v in done.items()) + ".")


@demo_cli.command("remind")
@with_appcontext
def remind_command():
    """Run the reminders job once now (the scheduler runs it hourly): `make run` uses it so
    that e-mails go out, and the demo actors press Start, within a minute of starting."""
    from migrator.engine.jobs import send_reminders

    n = send_reminders()
    get_session().commit()
    click.echo(f"Reminders: {n} groups checked.")
