"""Every user-visible string has a Russian translation (Russian is the default UI)."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "pgettext": ((1, "c"), 2), "lazy_pgettext": ((1, "c"), 2)}
METHODS = [("migrator/**.py", "python"), ("templates/**.html", "jinja2")]


def _msgids() -> dict[str, str]:
    found = {}
    for fname, _lineno, message, _comments, _ctx in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS, options_map={"templates/**.html": {}}
    ):
        if fname.startswith(("migrator/sandbox", "migrator/migrations")):
            continue
        for msg in message if isinstance(message, tuple) else (message,):
            if msg:
                found.setdefault(msg, fname)
    return found


def _translated() -> set[str]:
    done = set()
    for po in ROOT.glob("migrator/*/translations/ru/LC_MESSAGES/*.po"):
        with po.open("rb") as f:
            for m in read_po(f):
                if m.id and m.string and all(m.string if isinstance(m.string, tuple) else [1]):
                    done.update(m.id if isinstance(m.id, tuple) else (m.id,))
    return done


def test_every_message_has_a_russian_translation():
    ids = _msgids()
    assert "Sign in" in ids and "Page %(n)d of %(total)d" in ids  # the extraction works
    missing = {m: f for m, f in ids.items() if m not in _translated()}
    assert not missing, "untranslated: " + "; ".join(f"{f}: {m!r}" for m, f in
                                                      sorted(missing.items())[:40])


def test_a_message_means_the_same_in_every_catalogue():
    """The features' catalogues are merged (the last one wins): one msgid translated two ways
    shows the wrong word somewhere, e.g. a step «приостановлена» like a wave. A word that needs
    two translations takes a context (``pgettext("wave", "paused")``)."""
    seen: dict[tuple, dict[str, str]] = {}
    for po in sorted(ROOT.glob("migrator/*/translations/ru/LC_MESSAGES/*.po")):
        with po.open("rb") as f:
            for m in read_po(f):
                if m.id and m.string:
                    key = (m.context, m.id if isinstance(m.id, str) else m.id[0])
                    seen.setdefault(key, {})[po.parts[-5]] = str(m.string)
    clashes = {k: v for k, v in seen.items() if len(set(v.values())) > 1}
    assert not clashes, "one msgid, several translations: " + "; ".join(
        f"{k[1]!r}: {v}" for k, v in sorted(clashes.items(), key=str)[:20])


def test_numeric_dates_are_written_as_babel_writes_them(app):
    """The fast path of the ``d`` and ``dt`` filters (strftime in the configured zone) gives
    exactly what Babel's pattern engine gives, across the year, naive (UTC) or aware."""
    from datetime import UTC, datetime, timedelta

    from flask_babel import format_date, format_datetime
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from migrator.core.i18n import fmt_date, fmt_dt

    moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))

    @settings(max_examples=200, deadline=None)
    @given(moment=moments, aware=st.booleans(), fmt=st.sampled_from(
        ["dd.MM.yyyy", "dd.MM.yyyy HH:mm", "dd.MM.yyyy HH:mm:ss", "HH:mm"]))
    def check(moment, aware, fmt):
        value = moment.replace(tzinfo=UTC) if aware else moment
        assert fmt_dt(value, fmt) == format_datetime(value, fmt)
        assert fmt_date(value, fmt) == format_datetime(value, fmt)
        assert fmt_date(moment.date(), "dd.MM.yyyy") == format_date(moment.date(), "dd.MM.yyyy")

    for zone in ("Asia/Yekaterinburg", "Europe/Kaliningrad", "Asia/Kamchatka"):
        app.config["MIGRATOR_TZ"] = zone
        with app.test_request_context("/"):
            check()
            # A day boundary: 20:30 UTC is already the next day in Yekaterinburg (+05:00).
            late = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)
            expected = (late + timedelta(hours={"Asia/Yekaterinburg": 5,
                                                "Europe/Kaliningrad": 2,
                                                "Asia/Kamchatka": 12}[zone]))
            assert fmt_date(late) == expected.strftime("%d.%m.%Y")
