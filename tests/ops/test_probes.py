"""/healthz, /readyz and /metrics over the real app, Max sandbox and SMTP server."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from migrator.db import utcnow
from migrator.engine.jobs import beat
from migrator.engine.models import Heartbeat


def test_healthz_needs_no_sign_in(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok"}


def test_readyz_names_the_scheduler_until_one_beats(ready_world, app, client, ctx):
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json["status"] == "fail"
    assert resp.json["failing"] == ["scheduler"]
    assert set(resp.json["checks"]) == {"database", "migrations", "scheduler", "max",
                                        "webhook", "smtp", "outbox"}
    beat("scheduler", "test")
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] == "ok" and resp.json["failing"] == []

    # a heartbeat older than two minutes is a dead scheduler again
    hb = ctx.get(Heartbeat, "scheduler")
    hb.seen_at = utcnow() - timedelta(minutes=3)
    ctx.add(hb)
    ctx.commit()
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json["failing"] == ["scheduler"]


def test_readyz_names_max_and_smtp_when_they_are_down(app, client, ctx):
    beat("scheduler", "test")
    resp = client.get("/readyz")  # app_config points Max and SMTP at a closed port
    assert resp.status_code == 503
    assert resp.json["failing"] == ["max", "smtp"]  # webhook: required in production only
    assert resp.json["checks"]["webhook"]["required"] is False


def test_the_webhook_is_required_in_production(ready_world, app, client, ctx):
    beat("scheduler", "test")
    app.config["ENV"] = "production"
    app.config["MIGRATOR_BASE_URL"] = "https://migrator.example.org"  # not subscribed
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json["failing"] == ["webhook"]


def test_an_old_unsent_message_fails_the_outbox_check(ready_world, app, client, ctx):
    from migrator.mail.models import OutboxMessage

    beat("scheduler", "test")
    ctx.add(OutboxMessage(idem_key="t:1", kind="invite", to_addr="a@example.org", subject="s",
                          body_text="b", message_id="<1@example.org>",
                          created_at=utcnow() - timedelta(hours=2)))
    ctx.commit()
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json["failing"] == ["outbox"]
    assert "120" in resp.json["checks"]["outbox"]["detail"]


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_count(ready_world, app, client, ctx, make_org, make_group,
                                 make_employee):
    org = make_org()
    make_group(org, members=[make_employee(org), make_employee(org)])
    beat("scheduler", "test")
    client.get("/readyz")  # one GET /me and one GET /subscriptions through the client
    client.post("/max/webhook", json={"update_type": "bot_started", "timestamp": 1,
                                      "user": {"user_id": 5, "first_name": "И"},
                                      "chat_id": 1},
                headers={"X-Max-Bot-Api-Secret": app.config["MAX_WEBHOOK_SECRET"]})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")
    fams = _families(resp.get_data(as_text=True))
    for name in ("migrator_steps", "migrator_members", "migrator_outbox_messages",
                 "migrator_outbox_oldest_age_seconds", "migrator_max_requests",
                 "migrator_max_rate_limited", "migrator_max_limiter_wait_seconds",
                 "migrator_webhook_updates", "migrator_scheduler_heartbeat_timestamp_seconds",
                 "migrator_run_due_last_success_timestamp_seconds"):
        assert name in fams, name
    members = {s.labels["state"]: s.value for s in fams["migrator_members"].samples}
    assert members == {"not_linked": 2}
    calls = {(s.labels["method"], s.labels["status"]): s.value
             for s in fams["migrator_max_requests"].samples if s.name.endswith("_total")}
    assert calls.get(("GET", "200"), 0) >= 2
    updates = {s.labels["update_type"]: s.value
               for s in fams["migrator_webhook_updates"].samples if s.name.endswith("_total")}
    assert updates.get("bot_started", 0) >= 1
    hb = fams["migrator_scheduler_heartbeat_timestamp_seconds"].samples[0].value
    assert abs(hb - utcnow().timestamp()) < 60


def test_metrics_token(app, client):
    app.config["METRICS_TOKEN"] = "scrape-secret-123"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    resp = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert resp.status_code == 200
