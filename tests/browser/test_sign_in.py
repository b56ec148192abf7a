"""The coordinator signs in in a real browser and sees the Russian UI."""

from playwright.sync_api import expect


def test_sign_in_with_wrong_then_right_password(page, live_server, make_user, make_org):
    org = make_org(code="EDU", name="Министерство образования")
    user = make_user("coordinator", orgs=[org])
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    page.get_by_label("Электронная почта").fill(user.email)
    page.get_by_label("Пароль").fill("not-the-password")
    page.get_by_role("button", name="Вход").click()
    expect(page.get_by_text("Неверный адрес электронной почты или пароль.")).to_be_visible()
    page.get_by_label("Пароль").fill("correct-horse-battery")
    page.get_by_role("button", name="Вход").click()
    expect(page.get_by_role("heading", name="Сводка: Министерство образования")).to_be_visible()
