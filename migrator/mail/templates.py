"""Official e-mails in Russian, rendered from ``templates/mail/<name>.txt`` and ``.html``.

``render_email(name, **ctx)`` returns ``(subject, text, html)``. The subject is the
``subject`` variable the text template sets (``{% set subject = ... %}``). The HTML part
is autoescaped; the plain-text part is always present. Values may be objects or dicts
(Jinja reads ``row.name`` from either). Context each template expects:

- ``invite`` / ``reminder``: ``full_name``, ``deep_link``, ``org_name``, ``groups`` (list of
  group names), optional ``deadline`` (datetime), ``expires_at`` (datetime), ``reminder_number``.
- ``schedule``: ``full_name`` (recipient), ``wave`` (``name``, ``invite_at``,
  ``add_members_at``, ``announce_at``, ``cutover_at``, ``deadline``), ``groups`` (rows with
  ``name``, optional ``platform``, ``org_name``), optional ``org_name``, ``url``.
- ``escalation``: ``full_name``, ``group_name``, ``step`` (kind: invite, add_members, ...),
  optional ``org_name``, ``due_at``, ``deadline``, ``attempts``, ``last_error``, ``url``.
- ``report``: ``full_name``, ``group_name``, ``chat_title``, ``members_total``,
  ``members_in_chat``, optional ``org_name``, ``platform``, ``started_at``, ``cutover_at``,
  ``closed_at``, ``override_reason``, ``url``.
- ``digest``: ``full_name``, ``day`` (date), ``rows`` (rows with ``name`` or ``org_name``
  ("*": the reader's whole scope), ``employees``,
  ``linked``, ``groups_total``, ``groups_done``, ``members_total``, ``members_in_chat``),
  optional ``overdue`` (rows with ``group_name``, ``step``, ``due_at``), ``url``.
- ``join_link``: ``full_name``, ``chat_title``, ``link`` (the chat's join link),
  ``org_name``, ``group_name``: the fallback for someone Max will not add to the chat.
- ``directive_lag``: ``full_name`` (the head), ``org_name``, ``rows`` (``directive``,
  ``metric``, ``plan``, ``fact``, ``target``, ``due``), ``url``.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "mail"
NAMES = ("invite", "reminder", "schedule", "escalation", "report", "digest", "directive_lag",
         "join_link")
DEFAULT_TZ = "Asia/Yekaterinburg"

PLATFORMS = {"whatsapp": "WhatsApp", "telegram": "Telegram", "viber": "Viber", "vk": "ВКонтакте",
             "other": "другой мессенджер"}
STEPS = {"invite": "приглашение сотрудников", "add_members": "добавление участников в чат",
         "announce": "объявление о переходе", "parallel_run": "параллельная работа",
         "cutover": "переключение"}


def salutation(full_name: str | None) -> str:
    """"Уважаемый Иван Иванович!" from "Иванов Иван Иванович" (gender from the patronymic)."""
    words = (full_name or "").split()
    if not words:
        return "Здравствуйте!"
    if len(words) >= 3:
        patronymic = words[2].lower()
        form = ("Уважаемый" if patronymic.endswith(("вич", "ич", "оглы"))
                else "Уважаемая" if patronymic.endswith(("вна", "чна", "кызы"))
                else "Уважаемый(ая)")
        return f"{form} {words[1]} {words[2]}!"
    return f"Уважаемый(ая) {' '.join(words)}!"


def _zone() -> ZoneInfo:
    name = current_app.config.get("MIGRATOR_TZ", DEFAULT_TZ) if has_app_context() else DEFAULT_TZ
    return ZoneInfo(name)


def fmt_date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(_zone()).date()
    return value.strftime("%d.%m.%Y")


def fmt_dt(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(_zone()).strftime("%d.%m.%Y %H:%M")


def percent(part: int | None, total: int | None) -> str:
    if not total:
        return "—"
    return f"{100 * (part or 0) / total:.0f}%".replace(".", ",")


def quoted(names) -> str:
    """«A», «B» и «C»."""
    items = [f"«{n}»" for n in names]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " и " + items[-1]


def row_label(row) -> str:
    """A digest row's title: ``name`` or ``org_name`` ("*" is the reader's whole scope)."""
    own = row.get("own") if isinstance(row, dict) else getattr(row, "own", False)
    for key in ("name", "org_name", "org_code"):
        value = row.get(key) if isinstance(row, dict) else getattr(row, key, None)
        if value:
            if value == "*":
                return "Всего в зоне ответственности"
            return f"{value}: собственные сотрудники и группы" if own else str(value)
    return "—"


@cache
def _env(autoescape: bool) -> Environment:
    env = Environment(
        # the plain-text part is never HTML; the .html part is always escaped
        loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=autoescape,  # noqa: S701
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(d=fmt_date, dt=fmt_dt, quoted=quoted,
                       platform=lambda p: PLATFORMS.get(p or "", p or "—"),
                       step=lambda k: STEPS.get(k or "", k or "—"), label=row_label)
    env.globals.update(salutation=salutation, percent=percent)
    return env


def render_email(name: str, **ctx) -> tuple[str, str, str]:
    """Render the official e-mail ``name``: ``(subject, text, html)``."""
    if name not in NAMES:
        raise ValueError(f"unknown e-mail template {name!r}")
    module = _env(False).get_template(f"{name}.txt").make_module(ctx)
    subject = " ".join(str(module.subject).split())
    text = str(module).strip() + "\n"
    html = _env(True).get_template(f"{name}.html").render(subject=subject, **ctx)
    return subject, text, html
