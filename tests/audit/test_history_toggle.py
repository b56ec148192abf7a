"""A page's history shows people's actions and outcomes; the runner's bookkeeping (a
``step.started`` every few seconds) only behind a plain link, no JavaScript needed."""

from __future__ import annotations

import re
from html import unescape

from enginetest import past_wave, step

from migrator.audit.service import Actor, acting_as, record

RUNNER = Actor("job", "runner", "vm:13712")


def _history(html: str) -> str:
    return html.split('id="audit-history"', 1)[1].split("</section>", 1)[0]


def _rows(section: str) -> list[list[str]]:
    """The table's body rows as cell texts (time, actor, action, details)."""
    rows = [[" ".join(unescape(re.sub(r"<[^>]+>", "", c)).split()) for c in re.findall(
        r"<td[^>]*>(.*?)</td>", row, re.S)] for row in re.findall(r"<tr>(.*?)</tr>", section,
                                                                  re.S)]
    return [r for r in rows if r]


def test_group_history_hides_technical_events_behind_a_link(ctx, client, login, make_org,
                                                            make_employee, make_group,
                                                            make_user):
    org = make_org()
    group = make_group(org, members=[make_employee(org)], name="Школа № 3")
    coord = make_user("coordinator", orgs=[org])
    coord.full_name = "Анна Петрова"
    ctx.add(coord)
    ctx.commit()
    past_wave([group], coord)
    invite = step(group, "invite")
    with acting_as(RUNNER):
        for _ in range(3):
            record("step.started", object_type="step", object_id=invite.id, org_id=org.id,
                   summary={"kind": "invite", "group_id": group.id})
        record("step.succeeded", object_type="step", object_id=invite.id, org_id=org.id,
               summary={"kind": "invite", "group_id": group.id})
    ctx.commit()
    login(client, coord)
    client.post(f"/engine/groups/{group.key}/steps/parallel_run/pause")

    section = _history(client.get(f"/groups/{group.key}").get_data(as_text=True))
    rows = _rows(section)
    actions = [r[2] for r in rows]
    assert "Шаг приостановлен" in actions and "Шаг выполнен" in actions
    assert "Шаг начат" not in actions and "step.started" not in section
    paused = rows[actions.index("Шаг приостановлен")]
    assert paused[1] == "Анна Петрова"  # the person's name, not an e-mail or an id
    assert "шаг: Параллельная работа" in paused[3] and "стало: «приостановлен»" in paused[3]
    assert rows[actions.index("Шаг выполнен")][1] == "Планировщик"  # not job:runner:vm:…
    link = re.search(r'<a href="([^"]+)">Показать и технические события</a>', section)
    assert link and "history=all" in link.group(1)

    section = _history(client.get(unescape(link.group(1))).get_data(as_text=True))
    actions = [r[2] for r in _rows(section)]
    assert actions.count("Шаг начат") == 3 and "Шаг приостановлен" in actions
    back = re.search(r'<a href="([^"]+)">Показать только действия людей и результаты</a>',
                     section)
    assert back and "history=" not in back.group(1)


def test_event_details_read_as_words_and_codes_stay_code(app):
    from migrator.audit.labels import actor_text, summary_html

    with app.test_request_context("/"):
        html = str(summary_html(
            '{"kind": "announce", "before": "due", "after": "paused", "reason": "pre-flight '
            'failed: removed", "path": "/chats/{chatId}", "dates": {"before": "x"}, '
            '"weird_key": 1}'))
        assert html.startswith("шаг: Объявление; было: «к выполнению»; стало: «приостановлен»")
        assert "причина: чат Max не готов: бот удалён из чата Max;" in html
        assert "<code>/chats/{chatId}</code>" in html and "<code>weird_key</code>: 1" in html
        assert actor_text("job", "runner", "vm:13712") == "Планировщик"
        assert actor_text("system", "cli", "command line") == "Командная строка"
