"""Settings from the environment, with safe defaults for local use.

All defaults live here; :func:`load_config` validates them once at start-up and refuses an
unsafe production configuration (a default ``SECRET_KEY``).
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 (refused in production)


class ConfigError(RuntimeError):
    """The configuration is unsafe or invalid; the app must not start."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from exc


def load_config(instance_path: str, env: dict[str, str] | None = None) -> dict:
    """Build the settings mapping from ``env`` (default: ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    default_db = "sqlite:///" + str(Path(instance_path) / "migrator.db")
    cfg = {
        "ENV": env.get("MIGRATOR_ENV", "development"),
        "SECRET_KEY": env.get("SECRET_KEY") or DEFAULT_SECRET_KEY,
        "DATABASE_URL": env.get("DATABASE_URL") or default_db,
        "MAX_API_URL": (env.get("MAX_API_URL") or "https://platform-api.max.ru").rstrip("/"),
        "MAX_BOT_TOKEN": env.get("MAX_BOT_TOKEN", ""),
        "MAX_BOT_USERNAME": env.get("MAX_BOT_USERNAME") or "migrator_bot",
        "MAX_WEBHOOK_SECRET": env.get("MAX_WEBHOOK_SECRET", ""),
        "MAX_RPS": _int("MAX_RPS", env.get("MAX_RPS"), 30),
        "SMTP_HOST": env.get("SMTP_HOST") or "127.0.0.1",
        "SMTP_PORT": _int("SMTP_PORT", env.get("SMTP_PORT"), 25),
        "SMTP_USER": env.get("SMTP_USER", ""),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool(env.get("SMTP_STARTTLS")),
        "MAIL_FROM": env.get("MAIL_FROM") or "migrator@localhost",
        # Outbox senders (e-mail and bot replies): attempts before "failed", first retry delay
        # (doubling), the claim lease after which a crashed sender's rows are sent again.
        "MAIL_MAX_ATTEMPTS": _int("MAIL_MAX_ATTEMPTS", env.get("MAIL_MAX_ATTEMPTS"), 8),
        "MAIL_RETRY_SECONDS": _int("MAIL_RETRY_SECONDS", env.get("MAIL_RETRY_SECONDS"), 60),
        "MAIL_LEASE_SECONDS": _int("MAIL_LEASE_SECONDS", env.get("MAIL_LEASE_SECONDS"), 300),
        "SMTP_TIMEOUT": _int("SMTP_TIMEOUT", env.get("SMTP_TIMEOUT"), 30),
        "BOT_MESSAGE_MAX_ATTEMPTS": _int(
            "BOT_MESSAGE_MAX_ATTEMPTS", env.get("BOT_MESSAGE_MAX_ATTEMPTS"), 8
        ),
        # Invitation reminders: every N days after the last e-mail, at most this many.
        "REMINDER_EVERY_DAYS": _int("REMINDER_EVERY_DAYS", env.get("REMINDER_EVERY_DAYS"), 3),
        "MAX_REMINDERS": _int("MAX_REMINDERS", env.get("MAX_REMINDERS"), 3),
        "MIGRATOR_TZ": env.get("MIGRATOR_TZ") or "Asia/Yekaterinburg",
        "MIGRATOR_BASE_URL": (env.get("MIGRATOR_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        # Invitation deep-link tokens expire after this many days.
        "INVITE_TOKEN_DAYS": _int("INVITE_TOKEN_DAYS", env.get("INVITE_TOKEN_DAYS"), 30),
        # Failed sign-ins per e-mail (or per client address) within the window before a lock-out.
        "LOGIN_MAX_FAILURES": _int("LOGIN_MAX_FAILURES", env.get("LOGIN_MAX_FAILURES"), 5),
        "LOGIN_WINDOW_SECONDS": _int(
            "LOGIN_WINDOW_SECONDS", env.get("LOGIN_WINDOW_SECONDS"), 15 * 60
        ),
        "IMPORT_MAX_BYTES": _int("IMPORT_MAX_BYTES", env.get("IMPORT_MAX_BYTES"), 20 * 1024 * 1024),
        # Largest request body accepted (413 beyond); empty: IMPORT_MAX_BYTES + 1 MiB, set by
        # create_app once overrides are applied (see request_size_limit).
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", env.get("MAX_CONTENT_LENGTH"), 0) or None,
        "BABEL_DEFAULT_LOCALE": "ru",
        "BABEL_SUPPORTED_LOCALES": ["ru", "en"],
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PER_PAGE": 50,
    }
    cfg["SESSION_COOKIE_SECURE"] = _bool(
        env.get("SESSION_COOKIE_SECURE"), cfg["MIGRATOR_BASE_URL"].startswith("https://")
    )
    cfg["REMEMBER_COOKIE_SECURE"] = cfg["SESSION_COOKIE_SECURE"]
    cfg["BABEL_DEFAULT_TIMEZONE"] = cfg["MIGRATOR_TZ"]
    return cfg


def request_size_limit(cfg: dict) -> int:
    """``MAX_CONTENT_LENGTH`` if set, else room for the largest import plus the form around it."""
    return cfg.get("MAX_CONTENT_LENGTH") or cfg["IMPORT_MAX_BYTES"] + 1024 * 1024


def validate_config(cfg: dict) -> None:
    """Refuse to start with an unsafe or broken configuration."""
    try:
        ZoneInfo(cfg["MIGRATOR_TZ"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"MIGRATOR_TZ is not a known time zone: {cfg['MIGRATOR_TZ']!r}") from exc
    if cfg["ENV"] == "production":
        if cfg["SECRET_KEY"] == DEFAULT_SECRET_KEY or len(cfg["SECRET_KEY"]) < 16:
            raise ConfigError("SECRET_KEY must be set to a long random value in production")
        if not cfg["MAX_WEBHOOK_SECRET"]:
            raise ConfigError("MAX_WEBHOOK_SECRET must be set in production")
    if cfg["MAX_RPS"] < 1:
        raise ConfigError("MAX_RPS must be at least 1")
