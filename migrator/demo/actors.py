"""Demo only: the sandbox plays employees who press Start on their invitation links.

For invitation e-mails already sent (outbox ``kind`` invite/reminder, status ``sent``) whose
person has no Max link yet, a share of the people each round "open the e-mail": a sandbox
user is created for them and presses Start with the token from the deep link.
"""

from __future__ import annotations

import logging
import random
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
from flask import Flask
from sqlmodel import select

from migrator.db import get_session
from migrator.mail.models import OutboxMessage
from migrator.people.models import Employee
from migrator.sandbox.client import SandboxControl, SandboxControlError

log = logging.getLogger("migrator.demo")

LINK = re.compile(r"https://max\.ru/[A-Za-z0-9_]+\?start=[A-Za-z0-9_\-]+")


def token_from_text(text: str) -> str | None:
    """The ``start`` payload of the first deep link in an e-mail body."""
    m = LINK.search(text or "")
    if not m:
        return None
    return parse_qs(urlsplit(m.group(0)).query).get("start", [None])[0]


def waiting_people(limit: int = 500) -> list[tuple[str, str, str]]:
    """``(email, full name, token)`` of invited, not yet linked people (newest e-mail)."""
    session = get_session()
    rows = session.exec(
        select(OutboxMessage.to_addr, OutboxMessage.body_text, Employee.full_name)
        .join(Employee, Employee.email == OutboxMessage.to_addr)
        .where(OutboxMessage.kind.in_(("invite", "reminder")), OutboxMessage.status == "sent",
               Employee.max_user_id.is_(None))
        .order_by(OutboxMessage.id.desc()).limit(limit)
    ).all()
    session.commit()
    out, seen = [], set()
    for email, body, name in rows:
        token = token_from_text(body)
        if token and email not in seen:
            seen.add(email)
            out.append((email, name, token))
    return out


def press_start(sandbox: SandboxControl, name: str, token: str) -> int:
    """A new sandbox user presses Start with ``token``; returns the user's id."""
    first, _, last = (name or "Сотрудник").partition(" ")
    user = sandbox.create_user(first, last or None)
    sandbox.start(user["user_id"], token)
    return user["user_id"]


def simulate_people(sandbox_url: str, app: Flask, *, interval: float = 3.0,
                    share: float = 0.3, once: bool = False, rng=None) -> int:
    """Run rounds until killed (or one with ``once``); returns how many pressed Start."""
    rng = rng or random.Random()
    pressed: set[str] = set()  # tokens already used in this process
    total = 0
    with SandboxControl(sandbox_url) as sandbox:
        while True:
            with app.app_context():
                people = [p for p in waiting_people() if p[2] not in pressed]
            for email, name, token in people:
                if rng.random() > share:
                    continue
                try:
                    uid = press_start(sandbox, name, token)
                except (httpx.HTTPError, SandboxControlError) as exc:
                    log.warning("demo: sandbox call failed: %s", exc)
                    break
                pressed.add(token)
                total += 1
                log.info("demo: %s pressed Start (sandbox user %s)", email, uid)
                time.sleep(min(interval / 5, 0.5))
            if once:
                return total
            time.sleep(interval)
