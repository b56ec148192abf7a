"""The same migration with faults in the sandbox (503s, 429s, slow answers, duplicate and
reordered webhooks) reaches the same end state; add calls stay at the lower bound plus
the retries the faults caused."""

from __future__ import annotations

import math

import pytest
from flow import (
    PERMS,
    import_region,
    linked_count,
    past_dates,
    press_start_from_emails,
    subscribe_webhook,
    wait_until,
)

from migrator.waves.settings import DEFAULT_FOOTER

N = 130  # two add calls for the big group


@pytest.mark.slow
def test_faults_reach_the_same_end_state(sandbox, smtp, app, live_server, ctx, runner, client,
                                         tmp_path, make_user, api_token):
    app.config.update(RUNNER_RECHECK_SECONDS=0, MEMBER_RETRY_SECONDS=0)
    import_region(runner, tmp_path, N)
    admin = api_token(make_user("admin"))
    subscribe_webhook(app, sandbox.url, live_server.url)
    owner = sandbox.user("Директор")
    chats = {}
    for key in ("sch1-teachers", "sch1-admin"):
        chat_id = sandbox.ctl("POST", "/chats", {"title": key, "owner_id": owner})["chat_id"]
        sandbox.ctl("POST", f"/chats/{chat_id}/bot", {"permissions": PERMS,
                                                      "by_user_id": owner})
        chats[key] = chat_id
    sandbox.faults(seed=3, fail_503={"probability": 0.15}, slow={"probability": 0.2, "ms": 100},
                   fail_429={"probability": 0.15, "retry_after": 0.05},
                   duplicate_delivery={"probability": 0.5},
                   reorder_delivery={"probability": 0.2, "hold_ms": 150})

    def linked(key, chat_id):
        r = client.post(f"/api/v1/groups/{key}/link", json={"chat_id": chat_id}, headers=admin)
        return r.status_code in (200, 201)

    for key, chat_id in chats.items():
        wait_until(lambda k=key, c=chat_id: linked(k, c) or runner.invoke(args=["run-due"])
                   and False, timeout=30, what=f"{key} to be linked")
    resp = client.post("/api/v1/waves", json={"name": "Сбои", "group_keys": list(chats),
                                               **past_dates()}, headers=admin)
    assert resp.status_code == 201, resp.json

    def run():
        result = runner.invoke(args=["run-due"])
        assert result.exit_code == 0, result.output

    run()
    wait_until(lambda: len(smtp.messages) >= N or run(), timeout=60, what="the invitations")
    mails = list(smtp.messages)
    assert len({m["Message-ID"] for m in mails}) == len(mails) == N
    # add calls at the lower bound need everybody linked before members are added
    press_start_from_emails(sandbox, mails)
    # (no run-due meanwhile: adding members before everyone linked would be a delta sync)
    wait_until(lambda: linked_count() == N, timeout=60, what="everyone linked")

    def all_in():
        ids = {m["user_id"] for c in chats.values() for m in sandbox.chat(c)["members"]}
        return len(ids) >= N + 2
    wait_until(lambda: all_in() or run(), timeout=90, what="members added")
    sandbox.faults(fail_503={"probability": 0}, fail_429={"probability": 0},
                   slow={"probability": 0})
    for chat_id in chats.values():
        state = sandbox.chat(chat_id)
        bot_msgs = [m for m in state["messages"] if m["sender"]["is_bot"]]
        assert len(bot_msgs) == 1
        assert state["pinned_message"]["body"]["text"].endswith(DEFAULT_FOOTER)
        ids = [m["user_id"] for m in state["members"]]
        assert len(ids) == len(set(ids))
    sizes = {"sch1-teachers": N, "sch1-admin": 2}
    log = sandbox.requests("POST")
    for key, chat_id in chats.items():
        calls = [r for r in log if r["path"] == f"/chats/{chat_id}/members"]
        ok = [r for r in calls if r["status"] == 200]
        faulted = [r for r in calls if r["status"] != 200]
        assert len(ok) == math.ceil(sizes[key] / 100)
        assert len(calls) == len(ok) + len(faulted)
