"""The official e-mail templates: Russian, plain text always present, HTML escaped."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from migrator.mail.templates import render_email, salutation

WHEN = datetime(2026, 7, 30, 5, 0, tzinfo=UTC)  # 10:00 in Asia/Yekaterinburg
EVIL = "<script>alert(1)</script>"

CONTEXTS = {
    "invite": dict(full_name="Иванов Иван Иванович", deep_link="https://max.ru/bot?start=a-b_c",
                   org_name="Минобразования", groups=["Учителя", EVIL], deadline=WHEN,
                   expires_at=WHEN),
    "reminder": dict(full_name="Петрова Анна Сергеевна", deep_link="https://max.ru/bot?start=z",
                     org_name="МФЦ", groups=[EVIL], reminder_number=2),
    "schedule": dict(full_name="Сидоров Пётр Ильич",
                     wave=dict(name="Волна 1", invite_at=WHEN, add_members_at=WHEN,
                               announce_at=WHEN, cutover_at=WHEN, deadline=WHEN),
                     groups=[dict(name=EVIL, platform="whatsapp", org_name="Школа №1")],
                     url="http://migrator.example/waves/1"),
    "escalation": dict(full_name="Сидоров Пётр Ильич", group_name=EVIL, step="add_members",
                       due_at=WHEN, attempts=4, last_error="503 <Service Unavailable>"),
    "report": dict(full_name="Кузнецова Мария Петровна", group_name=EVIL, chat_title="Чат",
                   members_total=40, members_in_chat=37, platform="telegram", cutover_at=WHEN,
                   override_reason=None),
    "directive_lag": dict(full_name="Сидоров Пётр Ильич", org_name=EVIL,
                          rows=[dict(directive="Поручение № 12", metric="Сотрудники",
                                     plan=50.0, fact=0.0, target=100.0,
                                     due=date(2026, 7, 30))],
                          url="http://migrator.example/directives/"),
    "join_link": dict(full_name="Орлова Анна Петровна", chat_title=EVIL,
                      link="https://max.ru/join/abc", org_name="Школа №1", group_name="Учителя"),
    "digest": dict(full_name="Сидоров Пётр Ильич", day=date(2026, 7, 30),
                   rows=[dict(name=EVIL, employees=10, linked=7, groups_total=4, groups_done=1,
                              members_total=50, members_in_chat=31)],
                   overdue=[dict(group_name="Учителя", step="cutover", due_at=WHEN)]),
}


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_every_template_renders_russian_text_and_escaped_html(app, name):
    with app.app_context():
        subject, text, html = render_email(name, **CONTEXTS[name])
    assert subject and "\n" not in subject
    assert any("а" <= ch <= "я" for ch in subject.lower())
    assert text.startswith(salutation(CONTEXTS[name]["full_name"]))
    assert "СЭД" in text and "СЭД" in html
    assert "{{" not in text and "{%" not in html
    assert EVIL not in html and "&lt;script&gt;" in html
    assert EVIL in text  # the plain-text part is not HTML: nothing to escape


def test_specific_content(app):
    with app.app_context():
        _s, text, html = render_email("invite", **CONTEXTS["invite"])
        assert "https://max.ru/bot?start=a-b_c" in text
        assert 'href="https://max.ru/bot?start=a-b_c"' in html
        assert "до 30.07.2026" in text  # dates in the configured zone, Russian order
        _s, text, _h = render_email("report", **CONTEXTS["report"])
        assert "37 из 40 (92%)" in text and "Telegram" in text
        _s, text, _h = render_email("digest", **CONTEXTS["digest"])
        assert "7 из 10 (70%)" in text and "переключение, срок 30.07.2026 10:00" in text
        # rows as the progress service gives them (org_name; "*" is the whole scope)
        rows = [dict(org_name="*", employees=4, linked=1, groups_total=1, groups_done=0,
                     members_total=4, members_in_chat=1, groups_linked=0),
                dict(org_name="Школа №2", employees=4, linked=1, groups_total=1,
                     groups_done=0, members_total=4, members_in_chat=1)]
        _s, text, _h = render_email("digest", full_name="", day=date(2026, 7, 30), rows=rows,
                                    overdue=[])
        assert "Всего в зоне ответственности" in text and "Школа №2" in text
        _s, text, _h = render_email("schedule", **CONTEXTS["schedule"])
        assert "30.07.2026 10:00" in text and "WhatsApp" in text


def test_salutation_forms():
    assert salutation("Иванов Иван Иванович") == "Уважаемый Иван Иванович!"
    assert salutation("Петрова Анна Сергеевна") == "Уважаемая Анна Сергеевна!"
    assert salutation("Ivan Petrov") == "Уважаемый(ая) Ivan Petrov!"
    assert salutation("") == "Здравствуйте!"


def test_unknown_template_and_missing_context_are_loud(app):
    with app.app_context(), pytest.raises(ValueError):
        render_email("nope")
    with app.app_context(), pytest.raises(Exception, match="deep_link"):
        render_email("invite", full_name="X", org_name="O", groups=[])
