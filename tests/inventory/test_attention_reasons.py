"""Why a group needs attention: stored as a code, shown translated on every page."""

from __future__ import annotations

import pytest

from migrator.groups.attention import (
    ADD_FAILED,
    BOT_REMOVED,
    BOT_RIGHTS,
    INVALID_EMAILS,
    NOT_LINKED,
    STEP_FAILED,
    attention_text,
    parse,
    reason,
)


@pytest.mark.parametrize("stored, russian", [
    (reason(BOT_REMOVED), "бот удалён из чата Max"),
    (reason(NOT_LINKED), "группа не связана с чатом Max"),
    (reason(BOT_RIGHTS, missing="pin_message"),
     "у бота не хватает прав в чате: закреплять сообщения"),
    (reason(BOT_RIGHTS, missing="removed"), "бот удалён из чата Max"),
    (reason(ADD_FAILED, count=3), "3 участника не удалось добавить в чат Max"),
    (reason(ADD_FAILED, count=5), "5 участников не удалось добавить в чат Max"),
    (reason(STEP_FAILED, kind="announce", error="Max API error 403"),
     "шаг «Объявление» завершился ошибкой: Max отклонил запрос (ответ 403); если это "
     "повторяется, сообщите администратору"),
    (reason(STEP_FAILED, kind="add_members",
            error="Max API error 400 chat.member.limit: too many [POST /chats/{chatId}/members]"),
     "шаг «Добавление участников» завершился ошибкой: в чате Max достигнут предел числа "
     "участников: удалите ушедших или разделите группу"),
    ("pre-flight failed: read_all_messages, pin_message",
     "чат Max не готов: читать все сообщения, закреплять сообщения"),
    ("coverage 67% (8/12) is below 90%", "охват 67% (8 из 12) ниже порога 90%"),
    ("the announcement is not confirmed yet", "объявление ещё не подтверждено"),
    (reason(INVALID_EMAILS, count=1),
     "1 участник не приглашён: его адрес электронной почты непригоден"),
    ("Проверьте чат вручную", "Проверьте чат вручную"),  # free text: as it is
])
def test_stored_reasons_are_shown_in_russian(app, stored, russian):
    with app.test_request_context("/"):
        assert attention_text(stored).startswith(russian)


def test_a_reason_fits_the_column_and_round_trips():
    stored = reason(STEP_FAILED, kind="invite", error="x" * 2000)
    assert len(stored) <= 500
    assert parse(stored) == (STEP_FAILED, {"kind": "invite", "error": "x" * 300})
    with pytest.raises(ValueError):
        reason("no_such_reason")


def test_group_pages_translate_the_reason(ctx, client, make_org, make_group, make_user, login):
    org = make_org(code="A")
    group = make_group(org, key="k-attn", name="Группа Внимание")
    group.needs_attention = True
    group.attention_reason = reason(ADD_FAILED, count=2)
    ctx.add(group)
    ctx.commit()
    login(client, make_user("admin"))
    for url in ("/groups/", "/groups/k-attn", "/attention"):
        page = client.get(url).get_data(as_text=True)
        assert "2 участника не удалось добавить в чат Max" in page, url
        assert "add_failed" not in page, url
