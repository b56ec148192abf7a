"""Every page of the demo, rendered in Russian, has no Latin-only words outside an allow-list.

The demo region is seeded as ``flask demo seed`` does; the admin, a coordinator and a
signed-out visitor then walk the site: every GET page that takes no argument, and from
there every link to another page of the app (query strings dropped, a few pages per kind of
object, every group, wave and chat). The visible text of each page (headings, cells,
buttons, ``title``, ``aria-label``, ``placeholder`` and ``alt``) must not hold a word made
of Latin letters, except:

- text inside ``<code>``, ``<pre>`` (a stored record shown exactly, e.g. the audit event's
  hashed content), ``<script>`` and ``<style>``; and an element marked with its own
  language (the language switch names each language in its own script: «RU», «EN»);
- e-mail addresses, URLs and host names; organisation codes, group keys and the bot's user
  name (identifiers people type and search for); the fields of a message template such as
  ``{group}``, which people type as they are;
- the names «Max», «WhatsApp», «Telegram», «Viber», «VK» (and «VK Teams»), and «Excel»,
  the program people open the exports with;
- file formats, encodings and standards that Russian text writes in Latin too: CSV, XLSX,
  JSONL, JSON, PDF, UTF-8, Windows-1251 (what to save an import as), SHA-256 (the audit
  hash), SMTP (a mail server's refusal is reported with its code) and API (the API tokens
  page, for integrators; «API-токен» is the usual Russian term).
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import HTTPException

from migrator.db import get_session
from migrator.demo.data import ADMIN, COORDINATOR
from migrator.groups.models import SourceGroup
from migrator.org.models import Organisation

ALLOWED_WORDS = {"Max", "WhatsApp", "Telegram", "Viber", "VK",
                 "Excel", "CSV", "XLSX", "JSONL", "JSON", "PDF", "UTF-8", "Windows-1251",
                 "SHA-256", "SMTP", "API"}
ALLOWED_PHRASES = ("VK Teams",)
SKIPPED_TAGS = {"script", "style", "code", "pre"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
             "source", "track", "wbr"}
VISIBLE_ATTRS = ("title", "aria-label", "placeholder", "alt")
# Pages that are not HTML for people (probes, the API, files) are not walked.
NOT_PAGES = ("api.", "ops.healthz", "ops.readyz", "ops.prometheus", "core.favicon", "static",
             "progress.report_xlsx", "audit.export", "imports.template",
             "directives.ministry_file", "directives.act_scan")
PER_ENDPOINT = {"groups.detail": 100, "waves.detail": 100, "max.chat": 100,
                "org.detail": 20, "directives.org_channels": 3}
DEFAULT_PER_ENDPOINT = 6

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PLACEHOLDER = re.compile(r"\{\w+\}")  # a message template's fields, typed as they are
URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:ru|org|com|net|example)\b",
                 re.I)
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.:/-]*[A-Za-z0-9]|[A-Za-z]")


class VisibleText(HTMLParser):
    """The text a person sees or hears on a page, and the links on it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._stack: list[bool] = []  # per open element: is its text skipped?

    def _skipping(self) -> bool:
        return bool(self._stack) and self._stack[-1]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        skip = (self._skipping() or tag in SKIPPED_TAGS
                or (tag != "html" and "lang" in attrs))
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if not skip:
            self.parts.extend(attrs[a] for a in VISIBLE_ATTRS if attrs.get(a))
            if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
                self.parts.append(attrs["value"])
        if tag not in VOID_TAGS:
            self._stack.append(skip)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self._stack.pop()

    def handle_endtag(self, tag):
        if tag not in VOID_TAGS and self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if not self._skipping() and data.strip():
            self.parts.append(data)


def latin_words(text: str, identifiers: set[str]) -> list[str]:
    text = PLACEHOLDER.sub(" ", URL.sub(" ", EMAIL.sub(" ", text)))
    for phrase in ALLOWED_PHRASES:
        text = text.replace(phrase, " ")
    found = []
    for word in LATIN_WORD.findall(text):
        if word in ALLOWED_WORDS or word in identifiers:
            continue
        found.append(word)
    return found


def test_latin_words_are_found():
    """The checker itself: what it flags and what it lets through."""
    page = VisibleText()
    page.feed('<html lang="ru"><title>Группа</title><h1 title="step.started">Шаг</h1>'
              "<p>Ошибка: user.not.found: нет, <code>chat.member.limit</code>, "
              "ivanov@les-adm.example.org, https://max.ru/join/abc, группа wa-1, Max</p>"
              '<script>var x = "hidden";</script><a href="?lang=en" lang="en">EN</a>'
              "<p>job:runner:vm:13712 scheduled</p></html>")
    words = latin_words(" ".join(page.parts), {"wa-1"})
    assert words == ["step.started", "user.not.found", "job:runner:vm:13712", "scheduled"]
    assert page.links == ["?lang=en"]


@pytest.fixture
def demo(sandbox, app, runner):
    """The demo as ``make run`` starts it: seeded, mirrored into the Max sandbox, and one pass
    of the runner over the due steps (their outcomes, errors and history are on the pages)."""
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["demo", "stage-sandbox"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["run-due", "--no-mail"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        s = get_session()
        ids = set(s.scalars(sa.select(Organisation.code))) | set(
            s.scalars(sa.select(SourceGroup.key)))
    ids.add(app.config["MAX_BOT_USERNAME"])
    return ids


def _signed_in(app, email, password):
    client = app.test_client()
    resp = client.post("/login", data={"email": email, "password": password})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    return client


def _start_pages(app) -> list[str]:
    urls = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if ("GET" in rule.methods and not rule.arguments
                    and not rule.endpoint.startswith(NOT_PAGES)):
                urls.append(url_for(rule.endpoint))
    return sorted(urls)


def _walk(app, client, identifiers) -> tuple[dict[str, list[str]], Counter]:
    """Visit the start pages and the app's pages they link to; Latin words per page."""
    adapter = app.url_map.bind("localhost")
    todo, per_endpoint = _start_pages(app), Counter()
    seen = set(todo)
    problems: dict[str, list[str]] = {}
    while todo:
        url = todo.pop(0)
        resp = client.get(url)
        assert resp.status_code < 500, f"{url}: {resp.status_code}"
        if resp.status_code != 200 or resp.mimetype != "text/html":
            continue
        page = VisibleText()
        page.feed(resp.get_data(as_text=True))
        found = {" ".join(part.split())[:160]: latin_words(part, identifiers)
                 for part in page.parts}
        if any(found.values()):
            problems[url] = sorted(f"{', '.join(words)} in «{text}»"
                                   for text, words in found.items() if words)
        for href in page.links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path.startswith("/"):
                continue
            try:
                endpoint, _args = adapter.match(parts.path, method="GET")
            except HTTPException:  # a link to a file or a form's target
                continue
            if endpoint.startswith(NOT_PAGES) or parts.path in seen:
                continue
            if per_endpoint[endpoint] >= PER_ENDPOINT.get(endpoint, DEFAULT_PER_ENDPOINT):
                continue
            per_endpoint[endpoint] += 1
            seen.add(parts.path)
            todo.append(parts.path)
    return problems, per_endpoint


def _report(problems: dict[str, list[str]]) -> str:
    return "Latin words on pages:\n" + "\n".join(
        f"  {url}: {found}" for url, texts in sorted(problems.items()) for found in texts)


def test_every_demo_page_of_the_admin_is_russian(demo, app):
    client = _signed_in(app, *ADMIN)
    problems, visited = _walk(app, client, demo)
    for endpoint in ("org.detail", "groups.detail", "waves.detail", "max.chat", "people.detail",
                     "audit.event", "engine.rollback_group"):
        assert visited[endpoint] >= 1, f"no {endpoint} page was reached"
    assert visited["groups.detail"] >= 15
    assert not problems, _report(problems)


def test_every_demo_page_of_a_coordinator_is_russian(demo, app):
    client = _signed_in(app, *COORDINATOR[:2])
    problems, visited = _walk(app, client, demo)
    assert visited["groups.detail"] >= 3 and visited["people.detail"] >= 1
    assert not problems, _report(problems)


def test_the_sign_in_page_is_russian(demo, app):
    client = app.test_client()
    for url in ("/login", "/"):
        resp = client.get(url, follow_redirects=True)
        page = VisibleText()
        page.feed(resp.get_data(as_text=True))
        assert "Электронная почта" in " ".join(page.parts)
        assert not latin_words(" ".join(page.parts), demo)
