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


# -- a region of any size (tests/e2e/test_region.py) ---------------------------------------


def import_school(runner, tmp_path, employees: int, groups: int) -> dict[str, list[str]]:
    """One school with ``employees`` people in ``groups`` groups (``g00``...), through
    ``flask import``: person i is in group i mod G, every tenth also in the next group.
    Returns ``{group key: [e-mail, ...]}``."""
    emails = [f"e{i}@school.example" for i in range(employees)]
    keys = [f"g{g:02d}" for g in range(groups)]
    members: dict[str, list[str]] = {k: [] for k in keys}
    for i, addr in enumerate(emails):
        members[keys[i % groups]].append(addr)
        if groups > 1 and i % 10 == 3:
            members[keys[(i + 1) % groups]].append(addr)
    files = [
        ("organisations", ["code,name,parent_code,head_email",
                           "EDU,Министерство образования,,minister@edu.example",
                           "SCH,Школа №1,EDU,director@school.example"]),
        ("employees", ["email,full_name,org_code,position,phone"] + [
            f"{addr},Учителев Пётр{i} Иванович,SCH,Учитель," for i, addr in enumerate(emails)]),
        ("groups", ["key,name,platform,org_code,owner_email"] + [
            f"{k},Группа {k},{'whatsapp' if g % 2 else 'telegram'},SCH,{members[k][0]}"
            for g, k in enumerate(keys)]),
        ("members", ["group_key,email"] + [f"{k},{a}" for k in keys for a in members[k]]),
    ]
    for kind, rows in files:
        result = runner.invoke(args=["import", kind, write_csv(tmp_path, f"{kind}.csv", rows)])
        assert result.exit_code == 0, result.output
    return members


def open_deeplink(sandbox, user_id: int, message) -> None:
    """The addressee opens the Max link of their e-mail: the sandbox sends ``bot_started``."""
    from migrator.demo.actors import LINK

    link = LINK.search(message.get_body(("plain",)).get_content())
    assert link, message
    sandbox.open_deeplink(user_id, link.group(0))


class Runners:
    """``flask run-due --loop 1`` subprocesses, killed with SIGKILL and started again like a
    supervisor would; their output goes to files in ``directory``."""

    def __init__(self, app, directory, count: int = 2, **env) -> None:
        self.app, self.directory, self.env = app, directory, env
        self.started = 0
        self.kills = 0
        self.procs = [self._start() for _ in range(count)]

    def _start(self):
        from enginetest import start_runner

        self.started += 1
        out = open(self.directory / f"run-due-{self.started}.log", "w")  # noqa: SIM115
        return start_runner(self.app, "--loop", "1", output=out, **self.env)

    def kill(self, i: int = 0) -> None:
        """SIGKILL runner ``i`` mid-work and start a new one in its place."""
        import signal

        proc = self.procs[i]
        assert proc.poll() is None, self.output()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills += 1
        self.procs[i] = self._start()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            proc.wait(20)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def output(self, tail: int = 4000) -> str:
        return "\n".join(p.read_text()[-tail:] for p in
                         sorted(self.directory.glob("run-due-*.log")))
