"""The application factory: settings, database, i18n, security, blueprints and CLI."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask, g, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from migrator import db
from migrator import models as _models  # noqa: F401 (every table on SQLModel.metadata)
from migrator.auth import init_app as init_auth
from migrator.config import load_config, request_size_limit, validate_config
from migrator.core import blueprints, cli
from migrator.core.i18n import init_app as init_i18n
from migrator.ops.logs import configure as configure_logs

ROOT = Path(__file__).resolve().parent.parent


def create_app(config_overrides: dict | None = None) -> Flask:
    """Application factory: settings, database, i18n, auth, blueprints, CLI."""
    app = MigratorFlask(
        __name__,
        instance_path=str(ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    _load_dotenv()
    app.config.from_mapping(load_config(app.instance_path))
    if config_overrides:
        app.config.from_mapping(config_overrides)
    app.config["MAX_CONTENT_LENGTH"] = request_size_limit(app.config)
    validate_config(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    # Ids in paths fit the databases' integer ids: a larger number is a 404, not a 500.
    app.url_map.converters["int"] = BoundedIntConverter
    init_logging(app)
    db.init_app(app)
    init_i18n(app)
    init_security(app)
    register_blueprints(app)
    register_cli(app)
    return app


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` limited to what an integer id column holds (32-bit on PostgreSQL)."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002 (werkzeug's signature)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def _load_dotenv() -> None:
    load_dotenv(ROOT / ".env", override=False)


class RedactingFilter(logging.Filter):
    """Removes secrets (the bot token, SMTP password) from every log record."""

    def __init__(self, secrets_: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets_ if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            for s in self.secrets:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


def init_logging(app: Flask) -> None:
    log = logging.getLogger("migrator")
    configure_logs(app)  # text or JSON lines with the request or run id, one line per request
    redact = RedactingFilter(
        [app.config["MAX_BOT_TOKEN"], app.config["SMTP_PASSWORD"], app.config["MAX_WEBHOOK_SECRET"]]
    )
    for handler in log.handlers + logging.getLogger().handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
        handler.addFilter(redact)


API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX)


class PageSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions for the pages only: the API neither reads nor sets a cookie.

    Under ``/api/`` the session is always empty and never saved, so a cookie a client kept
    neither authenticates an API call (the API takes Bearer tokens only) nor collides with
    one (Flask-Login's "strong" protection against a stale cookie).
    """

    def open_session(self, app, request):
        if is_api_path(request.path):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if is_api_path(request.path):
            return
        super().save_session(app, session, response)


def init_security(app: Flask) -> None:
    proxies = app.config["MIGRATOR_TRUSTED_PROXIES"]
    if proxies:  # the client address and scheme from X-Forwarded-* of that many proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    app.session_interface = PageSessionInterface()
    app.permanent_session_lifetime = timedelta(days=app.config["SESSION_MAX_DAYS"])
    csrf = CSRFProtect(app)
    app.extensions["migrator.csrf"] = csrf
    init_auth(app)

    @app.errorhandler(500)
    def _server_error(exc):
        """An unexpected error: JSON under ``/api/``, the default page elsewhere."""
        return _json_error(exc) if is_api_path(request.path) else exc

    @app.before_request
    def _request_id():
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)

    @app.after_request
    def _security_headers(response):
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
        )
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config["SESSION_COOKIE_SECURE"]:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        h.setdefault("X-Request-Id", g.get("request_id", ""))
        if _signed_in() and not is_api_path(request.path):
            h["Cache-Control"] = "no-store"
        return response


def _signed_in() -> bool:
    return bool(g.get("_login_user")) and current_user.is_authenticated


def _json_error(exc: HTTPException):
    code = exc.code or 500
    body = {"error": (exc.name or "error").lower().replace(" ", "_"),
            "message": exc.description or ""}
    response = jsonify(body)
    response.status_code = code
    allowed = getattr(exc, "valid_methods", None)
    if code == 405 and allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


class MigratorFlask(Flask):
    """Flask with JSON errors under ``/api/`` (404, 405, 500… never an HTML page there)."""

    def handle_http_exception(self, e: HTTPException):
        if is_api_path(request.path) and e.code is not None and e.code >= 400:
            return _json_error(e)
        return super().handle_http_exception(e)


def register_blueprints(app: Flask) -> None:
    blueprints.register(app)


def register_cli(app: Flask) -> None:
    cli.register(app)
