"""Settings from the environment, with safe defaults for local use.

Every tunable is declared once in :data:`SETTINGS` with its type, default and bounds;
:func:`load_config` reads them from the environment (and nothing else in ``migrator`` reads
``os.environ``), :func:`validate_config` refuses an unsafe production configuration (a
default ``SECRET_KEY``) and values out of bounds, also when tests or callers override them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 (refused in production)
# The Max Bot API's pattern for a webhook secret (SubscriptionRequestBody.secret)
WEBHOOK_SECRET_RE = re.compile(r"^[a-zA-Z0-9_-]{5,256}$")
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """The configuration is unsafe or invalid; the app must not start."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _url(value: str) -> str:
    return value.rstrip("/")


@dataclass(frozen=True)
class Setting:
    """One tunable: ``name`` in the environment and in ``app.config``.

    ``kind`` converts the raw string (``int``, ``float``, ``str``, :func:`_bool`...); an
    unset or empty variable gives ``default``. ``minimum`` bounds numbers; ``optional``
    numbers may be ``None`` (unset: no limit).
    """

    name: str
    kind: Callable[[str], Any]
    default: Any
    minimum: float | None = None
    optional: bool = False
    env: str | None = None  # the environment variable, when it differs from ``name``

    def parse(self, env: Mapping[str, str]) -> Any:
        raw = env.get(self.env or self.name)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            return self.kind(raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{self.env or self.name}: {self.kind.__name__} expected, "
                              f"got {raw!r}") from exc

    def check(self, value: Any) -> None:
        if value is None and self.optional:
            return
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{self.name} must be a number, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise ConfigError(f"{self.name} must be at least {self.minimum:g}, got {value}")


_S = Setting
SETTINGS: tuple[Setting, ...] = (
    _S("ENV", str, "development", env="MIGRATOR_ENV"),
    _S("SECRET_KEY", str, DEFAULT_SECRET_KEY),
    _S("DATABASE_URL", str, None),  # None: SQLite in the instance folder
    # --- Max ---
    _S("MAX_API_URL", _url, "https://platform-api.max.ru"),
    _S("MAX_BOT_TOKEN", str, ""),
    _S("MAX_BOT_USERNAME", str, "migrator_bot"),
    _S("MAX_WEBHOOK_SECRET", str, ""),
    _S("MAX_RPS", int, 30, minimum=1),
    # --- e-mail ---
    _S("SMTP_HOST", str, "127.0.0.1"),
    _S("SMTP_PORT", int, 25, minimum=1),
    _S("SMTP_USER", str, ""),
    _S("SMTP_PASSWORD", str, ""),
    _S("SMTP_STARTTLS", _bool, False),
    _S("SMTP_TIMEOUT", int, 30, minimum=1),
    _S("MAIL_FROM", str, "migrator@localhost"),
    # Outbox senders (e-mail and bot replies): attempts before "failed", first retry delay
    # (doubling), the claim lease after which a crashed sender's rows are sent again.
    _S("MAIL_MAX_ATTEMPTS", int, 8, minimum=1),
    _S("MAIL_RETRY_SECONDS", int, 60, minimum=0),
    _S("MAIL_LEASE_SECONDS", int, 30, minimum=1),
    _S("BOT_MESSAGE_MAX_ATTEMPTS", int, 8, minimum=1),
    # Each run gives each outbox at most this long, so the steps (a Start-presser's add
    # call) come round again within seconds while thousands of messages wait their turn.
    _S("OUTBOX_PASS_SECONDS", float, 3.0, minimum=0.1),
    # Invitation reminders: every N days after the last e-mail, at most this many.
    _S("REMINDER_EVERY_DAYS", int, 3, minimum=1),
    _S("MAX_REMINDERS", int, 3, minimum=0),
    # Invitation deep-link tokens expire after this many days.
    _S("INVITE_TOKEN_DAYS", int, 30, minimum=1),
    # --- the step runner and the scheduler ---
    # Seconds between the scheduler's runs of the due steps and the outboxes.
    _S("RUNNER_INTERVAL_SECONDS", float, 5.0, minimum=0.01),
    # A claimed step belongs to its runner this long (renewed while it works); after a
    # runner is killed, another takes its work over within this time.
    _S("RUNNER_LEASE_SECONDS", int, 30, minimum=1),
    # Retry delay after a failed attempt: base × 2^(attempt-1), at most the maximum.
    _S("RUNNER_BACKOFF_SECONDS", float, 30.0, minimum=0),
    _S("RUNNER_BACKOFF_MAX_SECONDS", float, 3600.0, minimum=0),
    # Caps every "not yet, look again later" delay (demos and tests use a few seconds).
    _S("RUNNER_RECHECK_SECONDS", float, None, minimum=0, optional=True),
    _S("STEP_MAX_ATTEMPTS", int, 5, minimum=1),
    # Adding members, each person on their own clock: attempts before a person Max refuses
    # for good (privacy, unknown account) is handed to the coordinator, the first delay
    # after such a refusal, the first delay after a transient failure (429, 5xx, timeout,
    # success:false), both doubling per attempt (±20 % jitter) up to the maximum.
    _S("MEMBER_MAX_ATTEMPTS", int, 3, minimum=1),
    _S("MEMBER_RETRY_SECONDS", float, 900.0, minimum=0),
    _S("MEMBER_BACKOFF_SECONDS", float, 10.0, minimum=0),
    _S("MEMBER_RETRY_MAX_SECONDS", float, 3600.0, minimum=0),
    # The parallel run's delta sync, and the cut-over's re-check while it is blocked.
    _S("PARALLEL_SYNC_SECONDS", float, 86400.0, minimum=0),
    _S("CUTOVER_RECHECK_SECONDS", float, 600.0, minimum=0),
    # --- the web app ---
    _S("MIGRATOR_TZ", str, "Asia/Yekaterinburg"),
    # An unfinished step (or an open wave) is overdue this many hours after its due time
    # (deadline): the one grace every page, export and e-mail uses.
    _S("OVERDUE_GRACE_HOURS", int, 24, minimum=0),
    _S("MIGRATOR_BASE_URL", _url, "http://127.0.0.1:5000"),
    # Failed sign-ins per e-mail (or per client address) within the window before a lock-out.
    _S("LOGIN_MAX_FAILURES", int, 5, minimum=1),
    _S("LOGIN_WINDOW_SECONDS", int, 15 * 60, minimum=1),
    _S("IMPORT_MAX_BYTES", int, 20 * 1024 * 1024, minimum=1),
    # Where uploads wait between preview and confirmation; empty: instance/uploads.
    _S("IMPORT_UPLOAD_DIR", str, None, optional=True),
    # Largest request body accepted (413 beyond); empty: IMPORT_MAX_BYTES + 1 MiB, set by
    # create_app once overrides are applied (see request_size_limit).
    _S("MAX_CONTENT_LENGTH", int, None, minimum=1, optional=True),
    # The employee list counts exactly up to this many rows, then says "more than".
    _S("EMPLOYEE_COUNT_LIMIT", int, 1000, minimum=1),
    # --- security ---
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted.
    _S("MIGRATOR_TRUSTED_PROXIES", int, 0, minimum=0),
    # A signed-in session ends after this long without a request, and this long after
    # the sign-in whatever happens.
    _S("SESSION_IDLE_MINUTES", int, 8 * 60, minimum=1),
    _S("SESSION_MAX_DAYS", int, 7, minimum=1),
    # API tokens expire this many days after they were created.
    _S("API_TOKEN_DAYS", int, 180, minimum=1),
    # Largest webhook body accepted (Max sends small updates); 413 beyond.
    _S("WEBHOOK_MAX_BYTES", int, 256 * 1024, minimum=1),
    # 1: every admin must sign in with a TOTP code as well as the password.
    _S("MIGRATOR_ADMIN_2FA", _bool, False),
    # Directives: an organisation more than this many percentage points behind a
    # milestone's trajectory is escalated (attention item, weekly e-mail to its head).
    _S("DIRECTIVE_LAG_POINTS", int, 10, minimum=0),
    # Where transition-act scans and produced reports are kept; empty: instance/.
    _S("DIRECTIVE_FILES_DIR", str, None, optional=True),
    # --- operations ---
    # Log lines as "text" or "json" (one JSON object per line, for log collectors).
    _S("LOG_FORMAT", str, "text"),
    # A Bearer token /metrics requires when set.
    _S("METRICS_TOKEN", str, ""),
    # /readyz and doctor fail when an unsent e-mail or bot reply is older than this.
    _S("OUTBOX_MAX_AGE_SECONDS", int, 3600, minimum=60),
    # --- `make run` (the demo supervisor): local ports ---
    _S("MIGRATOR_PORT", int, 5000, minimum=1),
    _S("SANDBOX_PORT", int, 8765, minimum=1),
    _S("DEMO_SMTP_PORT", int, 8025, minimum=1),
)
BY_NAME = {s.name: s for s in SETTINGS}


def environment() -> dict[str, str]:
    """A copy of the process environment (child processes of ``make run`` inherit it)."""
    return dict(os.environ)


def load_config(instance_path: str, env: Mapping[str, str] | None = None) -> dict:
    """Build the settings mapping from ``env`` (default: ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    cfg: dict[str, Any] = {s.name: s.parse(env) for s in SETTINGS}
    if cfg["DATABASE_URL"] is None:
        cfg["DATABASE_URL"] = "sqlite:///" + str(Path(instance_path) / "migrator.db")
    if cfg["MAX_CONTENT_LENGTH"] == 0:
        cfg["MAX_CONTENT_LENGTH"] = None
    cfg.update({
        "BABEL_DEFAULT_LOCALE": "ru",
        "BABEL_SUPPORTED_LOCALES": ["ru", "en"],
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PER_PAGE": 50,
    })
    secure = env.get("SESSION_COOKIE_SECURE")
    cfg["SESSION_COOKIE_SECURE"] = (
        _bool(secure) if secure else cfg["MIGRATOR_BASE_URL"].startswith("https://"))
    cfg["REMEMBER_COOKIE_SECURE"] = cfg["SESSION_COOKIE_SECURE"]
    cfg["BABEL_DEFAULT_TIMEZONE"] = cfg["MIGRATOR_TZ"]
    return cfg


def request_size_limit(cfg: Mapping) -> int:
    """``MAX_CONTENT_LENGTH`` if set, else room for the largest import plus the form around it."""
    return cfg.get("MAX_CONTENT_LENGTH") or cfg["IMPORT_MAX_BYTES"] + 1024 * 1024


def webhook_address_ok(base_url: str) -> bool:
    """True when ``base_url`` is ``https://`` on port 443, as Max requires of a webhook."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and port in (None, 443)


def validate_config(cfg: Mapping) -> None:
    """Refuse to start with an unsafe or broken configuration."""
    try:
        ZoneInfo(cfg["MIGRATOR_TZ"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"MIGRATOR_TZ is not a known time zone: {cfg['MIGRATOR_TZ']!r}") from exc
    if cfg["ENV"] == "production":
        if cfg["SECRET_KEY"] == DEFAULT_SECRET_KEY or not looks_random(cfg["SECRET_KEY"]):
            raise ConfigError(f"SECRET_KEY must be a random value of at least "
                              f"{MIN_SECRET_LENGTH} characters in production")
        webhook_secret = cfg["MAX_WEBHOOK_SECRET"] or ""
        if not (WEBHOOK_SECRET_RE.match(webhook_secret) and looks_random(webhook_secret)):
            raise ConfigError(f"MAX_WEBHOOK_SECRET must be a random value of at least "
                              f"{MIN_SECRET_LENGTH} characters of A-Z, a-z, 0-9, '_' and '-' "
                              f"in production (the Max Bot API refuses any other)")
        if not webhook_address_ok(cfg["MIGRATOR_BASE_URL"]):
            raise ConfigError("MIGRATOR_BASE_URL must be https:// on port 443 in production: "
                              "Max delivers webhooks there only, and secure cookies and HSTS "
                              "depend on it")
        if not cfg["SESSION_COOKIE_SECURE"]:
            raise ConfigError("SESSION_COOKIE_SECURE must not be turned off in production")
    if cfg["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be 'text' or 'json', got {cfg['LOG_FORMAT']!r}")
    for setting in SETTINGS:
        if setting.name in cfg:
            setting.check(cfg[setting.name])
    if cfg["DIRECTIVE_LAG_POINTS"] > 100:
        raise ConfigError("DIRECTIVE_LAG_POINTS must be at most 100")


def looks_random(secret: str) -> bool:
    """Long enough and not a repeated pattern: at least 32 characters, 10 of them distinct."""
    return len(secret) >= MIN_SECRET_LENGTH and len(set(secret)) >= 10
