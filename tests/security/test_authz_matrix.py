"""The authorisation matrix: every route of ``app.url_map`` × every method × five callers
(anonymous, auditor, coordinator in scope, coordinator out of scope, admin) against the one
table below. A route without a rule fails, so a new route must state who may call it.

Every object the routes name belongs to organisation A; the "in scope" coordinator has A,
the "out of scope" one has B, the auditor is region-wide. Answers are classed as:
``L`` not signed in (302 to the sign-in page, or 401), ``F`` forbidden (403), ``H`` hidden
(404: another organisation's object does not exist for the caller), ``O`` served (any other
answer below 500, a form's validation error included), ``U`` 503 (only the readiness probe
may say "not ready"; here no scheduler runs). Any other 5xx always fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import url_for
from sqlmodel import select

from migrator.audit.models import AuditEvent
from migrator.auth.models import ApiToken
from migrator.directives.report import produce
from migrator.directives.service import create_directive
from migrator.max.models import MaxChat
from migrator.waves.service import create_wave

CALLERS = ("anonymous", "auditor", "coord_in", "coord_out", "admin")
EXEMPT = {"static"}  # public files, no data

# endpoint → {method: answers of (anonymous, auditor, coord_in, coord_out, admin)}
RULES: dict[str, dict[str, str]] = {
    # signing in and out (sign-out answers every caller with the sign-in page)
    "auth.login": {"GET": "OOOOO", "POST": "OOOOO"},
    "auth.logout": {"POST": "LLLLL"},
    "auth.tokens": {"GET": "LOOOO"},
    "auth.revoke_token": {"POST": "LHOHH"},  # one's own tokens only (the coordinator's here)
    # pages: lists are scoped (everyone signed in), objects of A hidden from B's coordinator
    "core.dashboard": {"GET": "LOOOO"},
    "progress.attention": {"GET": "LOOOO"},
    "progress.report": {"GET": "LOOOO"},
    "progress.report_xlsx": {"GET": "LOOOO"},
    "org.tree": {"GET": "LOOOO"},
    "org.detail": {"GET": "LOOHO"},
    "people.employees": {"GET": "LOOOO"},
    "people.detail": {"GET": "LOOHO"},
    "groups.groups": {"GET": "LOOOO"},
    "groups.detail": {"GET": "LOOHO"},
    "max.chats": {"GET": "LOOOO"},
    "max.chat": {"GET": "LOOHO"},
    "waves.waves": {"GET": "LOOOO"},
    "waves.detail": {"GET": "LOOHO"},
    "audit.events": {"GET": "LOOOO"},
    "audit.event": {"GET": "LOOHO"},
    "audit.export": {"GET": "LOOOO"},
    # changes: not for auditors; another organisation's object is hidden
    "max.refresh": {"POST": "LFOHO"},
    "max.link_from_chat": {"POST": "LFOHO"},
    "max.link_from_group": {"POST": "LFOHO"},
    # unlinking a group from its chat: the confirmation page (nothing linked here: it says so)
    "max.unlink_from_group": {"GET": "LFOHO", "POST": "LFOHO"},
    "engine.step_action": {"POST": "LFOHO"},
    # resetting a step or marking it failed: administrators, on a confirmation page
    "engine.reset_step": {"GET": "LFFFO", "POST": "LFFFO"},
    "engine.mark_step_failed": {"GET": "LFFFO", "POST": "LFFFO"},
    "engine.member_retry": {"POST": "LFOHO"},
    # undoing a group's move: the confirmation page; a POST without a reason is a 400
    "engine.rollback_group": {"GET": "LFOHO", "POST": "LFOHO"},
    # unbinding an employee's Max account, keeping a questioned one (confirmation pages)
    "people.unlink_account": {"GET": "LFOHO", "POST": "LFOHO"},
    "people.keep_link": {"GET": "LFOHO", "POST": "LFOHO"},
    "waves.change": {"POST": "LFOHO"},
    "waves.new": {"GET": "LFOOO", "POST": "LFOOO"},
    "waves.settings": {"GET": "LFFFO", "POST": "LFFFO"},  # region-wide defaults: admins
    "imports.upload": {"GET": "LFOOO", "POST": "LFOOO"},
    "imports.confirm": {"POST": "LFOOO"},
    "imports.template": {"GET": "LFHHO"},  # the organisations import is for admins
    # the Max webhook: its shared secret, never a user (none is sent here: 401)
    "max_webhook.webhook": {"POST": "LLLLL"},
    # the JSON API: Bearer tokens (an empty body is a 400, after the role check)
    "api.openapi_json": {"GET": "OOOOO"},
    "api.me": {"GET": "LOOOO"},
    "api.list_chats": {"GET": "LOOOO"},
    "api.progress": {"GET": "LOOOO"},
    "api.audit_events": {"GET": "LOOOO"},
    "api.group_api": {"GET": "LOOHO"},
    "api.link_group": {"POST": "LFOOO"},
    "api.confirm_step_api": {"POST": "LFOHO"},
    "api.rollback_group_api": {"POST": "LFOHO"},
    "api.unlink_employee_api": {"POST": "LFOHO"},
    "api.create_wave_api": {"POST": "LFOOO"},
    # directives, the register of transition orders, public channels, the ministry report
    "directives.index": {"GET": "LOOOO"},
    "directives.new": {"GET": "LFOOO", "POST": "LFOOO"},
    "directives.detail": {"GET": "LOOHO"},
    "directives.save_act": {"POST": "LFOHO"},
    "directives.act_scan": {"GET": "LHHHH"},  # no scan stored: nothing to serve
    "directives.channels_summary": {"GET": "LOOOO"},
    "directives.org_channels": {"GET": "LOOHO"},
    "directives.ministry": {"GET": "LOOOO", "POST": "LFOOO"},
    "directives.ministry_file": {"GET": "LOOHO"},
    "directives.ministry_sign_off": {"POST": "LFOHO"},
    "api.create_directive": {"POST": "LFOOO"},
    "api.directive_progress": {"GET": "LOOHO"},
    "api.put_transition_act": {"PUT": "LFOHO"},
    # a chat whose bot_added was missed, registered by its id (the form validates it)
    "max.register_chat": {"POST": "LFOOO"},
    # operations: probes for load balancers and monitoring, the status page for admins
    "ops.healthz": {"GET": "OOOOO"},
    "ops.readyz": {"GET": "UUUUU"},  # 503 naming the scheduler: none runs in this test
    "ops.prometheus": {"GET": "OOOOO"},  # METRICS_TOKEN guards it when set (tests/ops)
    "ops.system_status": {"GET": "LFFFO"},
    "core.favicon": {"GET": "OOOOO"},
    # the training sandbox (outside production only): the demo's Max sandbox, not an
    # organisation's object, for those who run the demo's flow (no sandbox answers here)
    "training.index": {"GET": "LFOOO"},
    "training.create_chat": {"POST": "LFOOO"},
    "training.bot": {"POST": "LFOOO"},
    "training.add_member": {"POST": "LFOOO"},
    "training.create_person": {"POST": "LFOOO"},
    "training.press_start": {"POST": "LFOOO"},
}

# URL arguments of the routes that name an object (all in organisation A).
def _url_args(world) -> dict[str, dict]:
    return {
        "key": "grp-a", "code": "A", "employee_id": world["employee"], "chat_pk": world["chat"],
        "wave_id": world["wave"], "seq": world["seq"], "fmt": "csv", "kind": "announce",
        "action": "confirm", "filename": "app.css", "token_id": world["token"],
        "directive_id": world["directive"], "run_id": world["run"],
    }


SPECIFIC = {
    "imports.template": {"kind": "organisations"},
    "waves.change": {"action": "pause"},
}


@pytest.fixture
def world(app, ctx, make_org, make_employee, make_group, make_user, login, api_token, tmp_path):
    app.config["DIRECTIVE_FILES_DIR"] = str(tmp_path)
    a, b = make_org(code="A", name="Организация А"), make_org(code="B", name="Организация Б")
    emp = make_employee(a)
    group = make_group(a, key="grp-a", members=[emp])
    chat = MaxChat(chat_id=-100, title="Чат А", status="discovered", org_id=a.id)
    ctx.add(chat)
    ctx.commit()
    users = {"auditor": make_user("auditor"), "coord_in": make_user("coordinator", orgs=[a]),
             "coord_out": make_user("coordinator", orgs=[b]), "admin": make_user("admin")}
    start = datetime.now(ZoneInfo("Asia/Yekaterinburg")) + timedelta(days=30)
    wave = create_wave("Волна А", [group.key], *(start + timedelta(days=i) for i in range(5)),
                       user=users["admin"])
    ctx.commit()
    seq = ctx.exec(select(AuditEvent.seq).where(AuditEvent.action == "wave.create")).one()
    with app.test_request_context():
        directive, run = _directive_and_report(a, users["admin"])
    ctx.commit()

    api_token(users["coord_in"])  # a spare token of the in-scope coordinator, to revoke
    token_id = ctx.exec(select(ApiToken.id).where(ApiToken.user_id == users["coord_in"].id)
                        .order_by(ApiToken.id)).first()
    clients, headers = {"anonymous": app.test_client()}, {"anonymous": {}}
    for name, user in users.items():
        clients[name] = login(app.test_client(), user)
        headers[name] = api_token(user)
    return {"employee": emp.id, "chat": chat.id, "wave": wave.id, "seq": seq, "token": token_id,
            "directive": directive.id, "run": run.id,
            "clients": clients, "headers": headers}


def _directive_and_report(org, admin):
    """A directive scoped to A and a ministry report of A, dated from today."""
    today = datetime.now(ZoneInfo("Asia/Yekaterinburg")).date()
    directive = create_directive({
        "title": "Поручение № 1", "issued_by": "Губернатор",
        "issued_at": (today - timedelta(days=30)).isoformat(), "scope_org": org.code,
        "milestones": [{"metric": "heads", "target_percent": 100,
                        "due": (today + timedelta(days=60)).isoformat()}]}, admin)
    run, _data = produce(org, admin)
    return directive, run


def _answer(resp) -> str:
    code = resp.status_code
    if code == 503:
        return "U"
    if code >= 500:
        return "E"
    if code == 401 or (code == 302 and "/login" in resp.headers.get("Location", "")):
        return "L"
    return {403: "F", 404: "H"}.get(code, "O")


def _routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "auth.logout",
                                                                  r.rule)):
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_has_a_rule(app):
    missing = sorted({f"{r.endpoint} {m}" for r, m in _routes(app)
                      if r.endpoint not in EXEMPT and m not in RULES.get(r.endpoint, {})})
    assert not missing, "routes without an authorisation rule: " + ", ".join(missing)
    stale = sorted(set(RULES) - {r.endpoint for r in app.url_map.iter_rules()})
    assert not stale, "rules for routes that no longer exist: " + ", ".join(stale)


def test_authorisation_matrix(app, world):
    args = _url_args(world)
    found, wrong = {}, []
    for rule, method in _routes(app):
        if rule.endpoint in EXEMPT:
            continue
        values = {k: v for k, v in {**args, **SPECIFIC.get(rule.endpoint, {})}.items()
                  if k in rule.arguments}
        with app.test_request_context():
            url = url_for(rule.endpoint, **values)
        answers = ""
        for caller in CALLERS:
            headers = world["headers"][caller] if url.startswith("/api/") else {}
            resp = world["clients"][caller].open(url, method=method, headers=headers)
            answers += _answer(resp)
            resp.get_data()  # a streamed export ends inside its request
            resp.close()
        found.setdefault(rule.endpoint, {})[method] = answers
        expected = RULES.get(rule.endpoint, {}).get(method)
        if answers != expected:
            wrong.append(f"{rule.endpoint} {method} {url}: {answers} (expected {expected})")
    assert not wrong, "\n".join(wrong)
