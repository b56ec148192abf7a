"""Flask-Babel set-up: Russian by default, English second; dates in the configured zone.

Each feature keeps its own catalogue in ``migrator/<feature>/translations``; all of them
are merged. Catalogues are compiled from their ``.po`` files when those are newer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import get_timezone_location
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import Babel, format_date, format_datetime, get_locale, lazy_gettext, ngettext

PACKAGE = Path(__file__).resolve().parent.parent


def translation_dirs() -> list[str]:
    return sorted(str(p) for p in PACKAGE.glob("*/translations") if p.is_dir())


def compile_catalogues() -> None:
    """Compile every ``.po`` whose ``.mo`` is missing or older (cheap; runs at start-up)."""
    for po in PACKAGE.glob("*/translations/*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo)


def select_locale() -> str:
    supported = current_app.config["BABEL_SUPPORTED_LOCALES"]
    if not has_request_context():  # the command line, jobs: the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    lang = request.args.get("lang")
    if lang in supported:
        session["lang"] = lang
        return lang
    lang = session.get("lang")
    if lang in supported:
        return lang
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    return current_app.config["MIGRATOR_TZ"]


# Numeric patterns read the same in every locale: written with strftime, not through Babel's
# pattern engine (a page of the audit log or a report shows hundreds of dates).
_NUMERIC = {"dd.MM.yyyy": "%d.%m.%Y", "dd.MM.yyyy HH:mm": "%d.%m.%Y %H:%M",
            "dd.MM.yyyy HH:mm:ss": "%d.%m.%Y %H:%M:%S", "HH:mm": "%H:%M"}


def _local(value: datetime) -> datetime:
    """A datetime (naive values are UTC, as the database keeps them) in the configured zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(current_app.config["MIGRATOR_TZ"]))  # cached by ZoneInfo


def fmt_dt(value: datetime | None, fmt: str = "dd.MM.yyyy HH:mm") -> str:
    """A UTC datetime shown in the configured zone."""
    if value is None:
        return "—"
    numeric = _NUMERIC.get(fmt)
    if numeric is not None:
        return _local(value).strftime(numeric)
    return format_datetime(value, fmt)


def fmt_date(value: date | datetime | None, fmt: str = "dd.MM.yyyy") -> str:
    if value is None:
        return "—"
    numeric = _NUMERIC.get(fmt)
    if isinstance(value, datetime):
        return _local(value).strftime(numeric) if numeric else format_datetime(value, fmt)
    return value.strftime(numeric) if numeric else format_date(value, fmt)


def tz_label() -> str:
    """The configured zone for people: its city in the reader's language and its offset,
    e.g. «Екатеринбург, +05:00»."""
    zone = ZoneInfo(current_app.config["MIGRATOR_TZ"])
    city = get_timezone_location(zone, locale=get_locale(), return_city=True)
    offset = datetime.now(zone).strftime("%z")
    return f"{city}, {offset[:3]}:{offset[3:]}"


def plural(n: int, singular: str, plural_: str) -> str:
    """``ngettext`` for templates: ``{{ n|plural("%(num)d group", "%(num)d groups") }}``."""
    return ngettext(singular, plural_, n)


def init_app(app: Flask) -> None:
    compile_catalogues()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(translation_dirs())
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["dt"] = fmt_dt
    app.jinja_env.filters["d"] = fmt_date
    app.jinja_env.filters["plural"] = plural
    app.jinja_env.globals["lazy_gettext"] = lazy_gettext
    app.jinja_env.globals["tz_label"] = tz_label
