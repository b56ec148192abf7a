"""The application factory: settings, database, i18n, security, blueprints and CLI."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask, g, request
from flask_wtf.csrf import CSRFProtect

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
    app = Flask(
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

    init_logging(app)
    db.init_app(app)
    init_i18n(app)
    init_security(app)
    register_blueprints(app)
    register_cli(app)
    return app


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


def init_security(app: Flask) -> None:
    csrf = CSRFProtect(app)
    app.extensions["migrator.csrf"] = csrf
    init_auth(app)

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
        return response


def register_blueprints(app: Flask) -> None:
    blueprints.register(app)


def register_cli(app: Flask) -> None:
    cli.register(app)
