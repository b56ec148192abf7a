"""Users, passwords (argon2), API tokens, sign-in throttling and organisation scopes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import lru_cache, wraps

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import abort, current_app, request
from flask_login import current_user
from sqlmodel import select
from zxcvbn import zxcvbn

from migrator.audit.service import Actor, record
from migrator.auth.models import (
    ROLES,
    ApiToken,
    AuthEventWindow,
    LoginAttempt,
    User,
    UserOrgScope,
)
from migrator.db import get_session, utcnow
from migrator.org.models import Organisation

_hasher = PasswordHasher()
TOKEN_PREFIX = "mgr_"  # noqa: S105 (a prefix, not a secret)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
MIN_PASSWORD_SCORE = 3  # zxcvbn: 0 (a common password) … 4 (strong)
TOKEN_TOUCH_SECONDS = 60  # last_used_at is written at most once a minute per token


class AuthError(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when the e-mail is unknown, so timing does not tell (made on
    first use: every process would otherwise pay a hashing at start-up, commands too)."""
    return _hasher.hash("dummy-password-for-timing")


def check_password(user: User | None, password: str) -> bool:
    try:
        stored = user.password_hash if user else _dummy_hash()
        return _hasher.verify(stored, password) and bool(user)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return email.strip().lower()


def get_user_by_email(email: str) -> User | None:
    return get_session().exec(select(User).where(User.email == normalise_email(email))).first()


def load_user(user_id: str) -> User | None:
    """Flask-Login user loader: ``"<id>:<session_version>"`` of an active user; a session of
    an older version (signed out, new password, deactivated since) is refused."""
    raw_id, _, raw_version = str(user_id).partition(":")
    if not (raw_id.isascii() and raw_id.isdigit() and raw_version.isascii()
            and raw_version.isdigit()) or len(raw_id) > 18 or len(raw_version) > 18:
        return None
    user = get_session().get(User, int(raw_id))
    if user is None or not user.is_active or user.session_version != int(raw_version):
        return None
    return user


def end_sessions(user: User) -> None:
    """Every session of ``user`` stops working (its cookie names an older version)."""
    user.session_version = (user.session_version or 0) + 1
    get_session().add(user)


def password_problem(password: str, email: str = "", full_name: str = "") -> str | None:
    """Why ``password`` is too weak, or ``None``: at least 12 characters, not a common or
    guessable one (zxcvbn), not the e-mail or the name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password must have at most {MAX_PASSWORD_LENGTH} characters"
    lowered = password.lower()
    personal = [v.strip().lower() for v in (email, email.split("@")[0], full_name,
                                            *full_name.split()) if v and len(v.strip()) >= 4]
    # The e-mail address or the name, alone or as the larger part of the password.
    if any(p in lowered and 2 * len(p) >= len(lowered) for p in personal):
        return "the password must not be made of the e-mail address or the name"
    if zxcvbn(password, user_inputs=personal)["score"] < MIN_PASSWORD_SCORE:
        return "the password is too common or too easy to guess"
    return None


def create_user(email: str, password: str, role: str, org_codes: list[str] = (),
                full_name: str = "") -> User:
    """Create (or update) a user with a role and organisation scopes; not committed."""
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    problem = password_problem(password, email, full_name)
    if problem:
        raise AuthError(problem)
    if role == "coordinator" and not org_codes:
        raise AuthError("a coordinator needs at least one --org")
    session = get_session()
    orgs = []
    for code in org_codes:
        org = session.exec(select(Organisation).where(Organisation.code == code)).first()
        if org is None:
            raise AuthError(f"unknown organisation code {code!r}")
        orgs.append(org)
    email = normalise_email(email)
    user = get_user_by_email(email)
    action = "user.update" if user else "user.create"
    if user is None:
        user = User(email=email, password_hash="", role=role)
    if user.id is not None:  # a new password or role ends the sessions of before
        end_sessions(user)
    user.password_hash = hash_password(password)
    user.role = role
    user.full_name = full_name or user.full_name
    session.add(user)
    session.flush()
    session.execute(sa.delete(UserOrgScope).where(UserOrgScope.user_id == user.id))
    for org in orgs:
        session.add(UserOrgScope(user_id=user.id, org_id=org.id))
    record(action, object_type="user", object_id=user.id,
           summary={"email": email, "role": role, "orgs": list(org_codes)})
    return user


def second_factor_ok(user: User, code: str | None) -> bool:
    """No second factor set up, or ``code`` is the current TOTP code (±30 s)."""
    if not user.totp_secret:
        return True
    code = (code or "").strip().replace(" ", "")
    return code.isascii() and code.isdigit() and pyotp.TOTP(user.totp_secret).verify(
        code, valid_window=1)


def second_factor_missing(user: User) -> bool:
    """``MIGRATOR_ADMIN_2FA``: an admin without a TOTP secret may not sign in."""
    return (current_app.config["MIGRATOR_ADMIN_2FA"] and user.role == "admin"
            and not user.totp_secret)


def set_totp(user: User, enabled: bool) -> str | None:
    """A new TOTP secret for ``user`` (returned, to enrol an app) or none; audited, and every
    session ends. Not committed."""
    user.totp_secret = pyotp.random_base32() if enabled else None
    end_sessions(user)
    record("user.totp_on" if enabled else "user.totp_off", object_type="user",
           object_id=user.id, summary={"email": user.email})
    return user.totp_secret


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User) -> str:
    """A new API token for ``user``; only its hash is stored. Not committed."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(days=current_app.config["API_TOKEN_DAYS"])
    get_session().add(ApiToken(user_id=user.id, token_hash=_hash_token(token), prefix=token[:10],
                               created_at=now, expires_at=expires))
    record("token.create", object_type="user", object_id=user.id,
           summary={"prefix": token[:10], "expires_at": expires.isoformat()})
    return token


def user_tokens(user: User) -> list[ApiToken]:
    return list(get_session().exec(select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def token_state(token: ApiToken) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= utcnow():
        return "expired"
    return "active"


def revoke_token(token: ApiToken) -> bool:
    """Revoke ``token`` (audited); False if it was revoked already. Not committed."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    get_session().add(token)
    record("token.revoke", object_type="user", object_id=token.user_id,
           summary={"prefix": token.prefix})
    return True


def tokens_by_prefix(prefix: str) -> list[ApiToken]:
    return list(get_session().exec(select(ApiToken).where(ApiToken.prefix == prefix.strip())))


def set_active(user: User, active: bool) -> None:
    """Deactivate (every session and token stops working) or activate again; audited."""
    user.is_active = active
    if not active:
        end_sessions(user)
    get_session().add(user)
    record("user.activate" if active else "user.deactivate", object_type="user",
           object_id=user.id, summary={"email": user.email})


def load_user_from_bearer(req) -> User | None:
    """Flask-Login request loader: ``Authorization: Bearer <token>`` on the API."""
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not req.path.startswith("/api/"):
        return None
    token = header[7:].strip()
    if not token:
        return None
    session = get_session()
    now = utcnow()
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == _hash_token(token),
                               ApiToken.revoked_at.is_(None),
                               sa.or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
    ).first()
    # The lookup is by hash; compare again in constant time for good measure.
    if row is None or not hmac.compare_digest(row.token_hash, _hash_token(token)):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at > timedelta(
            seconds=TOKEN_TOUCH_SECONDS):
        # Its own short transaction, before the view does anything (a GET never commits).
        session.execute(sa.update(ApiToken).where(ApiToken.id == row.id)
                        .values(last_used_at=now))
        session.commit()
    return user


# --- sign-in throttling ---------------------------------------------------------------


def login_locked(email: str, client_ip: str) -> bool:
    cfg = current_app.config
    since = utcnow() - timedelta(seconds=cfg["LOGIN_WINDOW_SECONDS"])
    session = get_session()
    by_email = session.scalar(
        select(sa.func.count()).select_from(LoginAttempt)
        .where(LoginAttempt.email == normalise_email(email), LoginAttempt.at >= since)
    )
    by_ip = session.scalar(
        select(sa.func.count()).select_from(LoginAttempt)
        .where(LoginAttempt.client_ip == client_ip, LoginAttempt.at >= since)
    )
    return by_email >= cfg["LOGIN_MAX_FAILURES"] or by_ip >= cfg["LOGIN_MAX_FAILURES"] * 4


def note_failed_login(email: str, client_ip: str) -> None:
    session = get_session()
    since = utcnow() - timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.at < since))  # stays small
    session.add(LoginAttempt(email=normalise_email(email)[:320], client_ip=client_ip[:64]))


def audit_attempt(action: str, email: str, client_ip: str) -> int | None:
    """Failed or throttled sign-ins: one audit event per e-mail/address and window.

    Returns how many attempts the event written now stands for (this one and those
    since the previous event), or ``None`` when the attempt only counts towards the next
    event. Not committed.
    """
    session = get_session()
    now = utcnow()
    window = timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    email = normalise_email(email)[:320]
    key = (AuthEventWindow.action == action, AuthEventWindow.email == email,
           AuthEventWindow.client_ip == client_ip[:64])
    row = session.exec(select(AuthEventWindow).where(*key).with_for_update()).first()
    if row is not None and now - row.started_at < window:
        row.pending += 1
        session.add(row)
        return None
    attempts = (row.pending if row else 0) + 1
    if row is None:
        session.execute(sa.delete(AuthEventWindow).where(AuthEventWindow.started_at < now - window,
                                                         AuthEventWindow.pending == 0))
        row = AuthEventWindow(action=action, email=email, client_ip=client_ip[:64],
                              started_at=now)
    row.started_at, row.pending = now, 0
    session.add(row)
    record(action, object_type="user", actor=Actor("user", None, email or client_ip),
           summary={"email": email, "attempts": attempts,
                    "window_seconds": int(window.total_seconds())})
    return attempts


def clear_failed_logins(email: str) -> None:
    get_session().execute(
        sa.delete(LoginAttempt).where(LoginAttempt.email == normalise_email(email))
    )


# --- roles and scopes -----------------------------------------------------------------


def scope_paths(user: User) -> list[str] | None:
    """Materialised paths of the user's scope roots, or ``None`` for "everything"."""
    if user.role == "admin":
        return None
    rows = get_session().exec(
        select(Organisation.path).join(UserOrgScope, UserOrgScope.org_id == Organisation.id)
        .where(UserOrgScope.user_id == user.id)
    ).all()
    if user.role == "auditor" and not rows:
        return None  # a region-wide auditor
    return list(rows)


def scope_org_ids_subquery(user: User):
    """A SELECT of the organisation ids the user may see, or ``None`` for all."""
    paths = scope_paths(user)
    if paths is None:
        return None
    if not paths:
        return select(Organisation.id).where(sa.false())
    return select(Organisation.id).where(sa.or_(*[Organisation.path.startswith(p) for p in paths]))


def scoped(query, org_id_column, user: User | None = None):
    """Restrict ``query`` to rows whose ``org_id_column`` is in the user's scope."""
    user = user or current_user
    sub = scope_org_ids_subquery(user)
    return query if sub is None else query.where(org_id_column.in_(sub))


def can_see_org(org: Organisation | None, user: User | None = None) -> bool:
    user = user or current_user
    if org is None:
        return False
    paths = scope_paths(user)
    return paths is None or any(org.path.startswith(p) for p in paths)


def can_see_org_id(org_id: int | None, user: User | None = None) -> bool:
    return can_see_org(get_session().get(Organisation, org_id) if org_id else None, user)


def require_org(org: Organisation | None) -> Organisation:
    """404 when the object's organisation is outside the user's scope (never leak data)."""
    if org is None or not can_see_org(org):
        abort(404)
    return org


def can_write(user: User | None = None) -> bool:
    user = user or current_user
    return user.is_authenticated and user.role in ("admin", "coordinator")


def roles_required(*roles: str):
    """View decorator: the signed-in user must have one of ``roles`` (else 403)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def client_ip() -> str:
    return request.remote_addr or "-"
