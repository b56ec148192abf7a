"""The whole migration of a region's groups, driven like an operator would, for the e2e tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from migrator.db import get_session
from migrator.demo.actors import token_from_text
from migrator.people.models import Employee

PERMS = ["read_all_messages", "add_remove_members", "pin_message"]


def wait_until(fn, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        get_session().rollback()
        # rollback() expires nothing when no transaction is open: read every row afresh
        get_session().expire_all()
        value = fn()
        # end the read transaction: on SQLite it holds the write lock the webhook needs
        get_session().commit()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def write_csv(tmp_path, name: str, rows: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def import_region(runner, tmp_path, n_people: int = 6):
    """Organisations, employees, two groups and their members through ``flask import``."""
    files = [
        ("organisations", ["code,name,parent_code,head_email",
                           "EDU,Министерство образования,,minister@edu.example",
                           "SCH1,Школа №1,EDU,director@school1.example"]),
        ("employees", ["email,full_name,org_code,position,phone"] + [
            f"t{i}@school1.example,Учителев Пётр{i} Иванович,SCH1,Учитель," for i in
            range(n_people)]),
        ("groups", ["key,name,platform,org_code,owner_email",
                    "sch1-teachers,Учителя школы №1,whatsapp,SCH1,t0@school1.example",
                    "sch1-admin,Администрация школы №1,telegram,SCH1,t0@school1.example"]),
        ("members", ["group_key,email"]
         + [f"sch1-teachers,t{i}@school1.example" for i in range(n_people)]
         + [f"sch1-admin,t{i}@school1.example" for i in range(2)]),
    ]
    for kind, rows in files:
        result = runner.invoke(args=["import", kind, write_csv(tmp_path, f"{kind}.csv", rows)])
        assert result.exit_code == 0, result.output


def subscribe_webhook(app, sandbox_url: str, live_url: str) -> None:
    from migrator.max.client import MaxClient

    with MaxClient(sandbox_url, app.config["MAX_BOT_TOKEN"]) as client:
        client.subscribe(f"{live_url}/max/webhook", secret=app.config["MAX_WEBHOOK_SECRET"])


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).astimezone(__import__("zoneinfo").ZoneInfo(
        "Asia/Yekaterinburg")).isoformat()


def past_dates() -> dict:
    start = datetime.now(UTC) - timedelta(hours=1)
    return {"invite_at": iso(start), "add_members_at": iso(start + timedelta(minutes=5)),
            "announce_at": iso(start + timedelta(minutes=10)),
            "cutover_at": iso(start + timedelta(minutes=15)),
            "deadline": iso(start + timedelta(days=2))}


def press_start_from_emails(sandbox, messages, names=None) -> dict[str, int]:
    """Each addressee opens their e-mail and presses Start with the link's token."""
    users = {}
    for msg in messages:
        to = str(msg["To"]).strip().lower()
        body = msg.get_body(("plain",)).get_content()
        token = token_from_text(body)
        assert token, body
        uid = sandbox.user(to.split("@")[0])
        sandbox.ctl("POST", f"/users/{uid}/start", {"payload": token})
        users[to] = uid
    return users


def linked_count() -> int:
    return get_session().scalar(sa.select(sa.func.count()).select_from(Employee)
                                .where(Employee.max_user_id.is_not(None))) or 0
