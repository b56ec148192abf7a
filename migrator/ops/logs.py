"""Log lines with a request or run id, as text or JSON (``LOG_FORMAT``).

Every record of the ``migrator`` loggers carries ``request_id`` (web requests, also sent
back as ``X-Request-Id``) or ``run_id`` (a scheduler job, a CLI command). The app writes
one line per request (``migrator.request``) and one per scheduler job
(``migrator.engine``); :class:`migrator.RedactingFilter` keeps secrets out of all of them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Iterator

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

log = logging.getLogger("migrator.request")

_RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("migrator_run_id", default="")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(ids)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(run_id)s"


def new_id() -> str:
    return secrets.token_hex(8)


@contextlib.contextmanager
def run_context(run_id: str | None = None) -> Iterator[str]:
    """Tag the log records written inside with a run id (a job or command run)."""
    rid = run_id or new_id()
    token = _RUN_ID.set(rid)
    try:
        yield rid
    finally:
        _RUN_ID.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``run_id`` and ``ids`` (the one that is set) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        req = ""
        if has_request_context():
            req = g.get("request_id", "") or ""
        run = _RUN_ID.get()
        record.request_id = req
        record.run_id = run
        record.ids = f"req={req}" if req else (f"run={run}" if run else "-")
        return True


def make_formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time",
                                                         "levelname": "level",
                                                         "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def configure(app: Flask) -> None:
    """Format the ``migrator`` loggers' handler per ``LOG_FORMAT``; add the request line."""
    logger = logging.getLogger("migrator")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
        logger.setLevel(logging.INFO)
    for handler in logger.handlers:
        handler.setFormatter(make_formatter(app.config["LOG_FORMAT"]))
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
    if not app.extensions.get("migrator.request_log"):
        app.extensions["migrator.request_log"] = True
        app.before_request(_start_timer)
        app.after_request(_request_line)


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def _request_line(response):
    started = g.get("request_started")
    ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    # the path only: a query string may carry a deep-link token or a search term
    log.info("%s %s %s %.0fms", request.method, request.path, response.status_code, ms)
    return response
