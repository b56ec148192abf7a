"""``flask doctor`` names what fails, in Russian; «Состояние системы» shows the checks."""

from __future__ import annotations

from migrator.engine.jobs import beat


def test_doctor_names_smtp_when_the_mail_server_is_down(ready_world, app, runner, ctx):
    beat("scheduler", "test")
    app.config["SMTP_PORT"] = 9  # nothing listens there
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1, result.output
    assert "[ОШИБКА] Почтовый сервер (SMTP): 127.0.0.1:9 не принимает соединение" in result.output
    assert "Не пройдено: Почтовый сервер (SMTP)" in result.output
    assert "[ОК] Планировщик" in result.output and "[ОК] Токен бота Max" in result.output


def test_doctor_passes_when_everything_holds(ready_world, app, runner, ctx):
    beat("scheduler", "test")
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 9 and lines[-1] == "Все проверки пройдены."
    assert app.config["MAX_BOT_TOKEN"] not in result.output


def test_doctor_reports_unsafe_configuration(ready_world, app, runner, ctx):
    beat("scheduler", "test")
    app.config["MAX_WEBHOOK_SECRET"] = ""
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[ОШИБКА] Настройки: MAX_WEBHOOK_SECRET не задан" in result.output


def test_status_page_in_russian_for_admins_only(ready_world, app, client, ctx, make_user,
                                                 login, make_org):
    login(client, make_user("admin"))
    page = client.get("/admin/status")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Состояние системы" in html
    assert "Планировщик" in html and "ни разу не запускался" in html
    assert "Система не готова: Планировщик." in html
    assert f"{app.config['MIGRATOR_BASE_URL']}/max/webhook" in html and "наш" in html
    assert "Запросов за последнюю секунду" in html
    assert "Неотправленных сообщений нет." in html
    beat("scheduler", "test")
    html = client.get("/admin/status").get_data(as_text=True)
    assert "Система готова" in html


def test_status_page_is_for_administrators(app, client, ctx, make_user, login, make_org):
    assert client.get("/admin/status").status_code == 302  # sign in first
    login(client, make_user("coordinator", orgs=[make_org()]))
    assert client.get("/admin/status").status_code == 403
