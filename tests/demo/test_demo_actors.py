"""The demo's simulated employees press Start on the links of sent invitation e-mails."""

from __future__ import annotations

import random

from migrator.demo.actors import simulate_people, token_from_text
from migrator.mail.models import OutboxMessage


def test_token_from_text():
    body = "Перейдите по ссылке:\nhttps://max.ru/migrator_bot?start=AbC-12_x\nСпасибо"
    assert token_from_text(body) == "AbC-12_x"
    assert token_from_text("no link") is None


def test_people_press_start_once(sandbox, app, ctx, make_org, make_employee):
    org = make_org()
    waiting = make_employee(org, full_name="Иванов Иван Иванович")
    linked = make_employee(org, max_user_id=555)
    for emp, token, status in ((waiting, "tok-waiting", "sent"), (linked, "tok-linked", "sent"),
                               (waiting, "tok-pending", "pending")):
        ctx.add(OutboxMessage(idem_key=f"invite:{token}", kind="invite", to_addr=emp.email,
                              subject="s", message_id=f"<{token}@x>", status=status,
                              body_text=f"https://max.ru/migrator_test_bot?start={token}"))
    ctx.commit()
    n = simulate_people(sandbox.url, app, share=1.0, once=True, interval=0,
                        rng=random.Random(1))
    assert n == 1
    starts = [u for u in sandbox.ctl("GET", "/updates")["updates"]
              if u["update_type"] == "bot_started"]
    assert [u["payload"] for u in starts] == ["tok-waiting"]
    assert starts[0]["user"]["first_name"] == "Иванов"
