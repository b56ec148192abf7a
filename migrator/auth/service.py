"""Users, passwords (argon2), API tokens, sign-in throttling and organisation scopes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import wraps

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import abort, current_app, request
from flask_login import current_user
from sqlmodel import select

from migrator.audit.service import record
from migrator.auth.models import ROLES, ApiToken, LoginAttempt, User, UserOrgScope
from migrator.db import get_session, utcnow
from migrator.org.models import Organisation

_hasher = PasswordHasher()
# A hash to verify against when the e-mail is unknown, so timing does not tell.
_DUMMY_HASH = _hasher.hash("dummy-password-for-timing")
TOKEN_PREFIX = "mgr_"  # noqa: S105 (a prefix, not a secret)


class AuthError(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and bool(user)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return email.strip().lower()


def get_user_by_email(email: str) -> User | None:
    return get_session().exec(select(User).where(User.email == normalise_email(email))).first()


def load_user(user_id: str) -> User | None:
    try:
        user = get_session().get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return user if user and user.is_active else None


def create_user(email: str, password: str, role: str, org_codes: list[str] = (),
                full_name: str = "") -> User:
    """Create (or update) a user with a role and organisation scopes; not committed."""
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise AuthError("the password must have at least 8 characters")
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


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User) -> str:
    """A new API token for ``user``; only its hash is stored. Not committed."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    get_session().add(ApiToken(user_id=user.id, token_hash=_hash_token(token), prefix=token[:10]))
    record("token.create", object_type="user", object_id=user.id, summary={"prefix": token[:10]})
    return token


def load_user_from_bearer(req) -> User | None:
    """Flask-Login request loader: ``Authorization: Bearer <token>`` on the API."""
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not req.path.startswith("/api/"):
        return None
    token = header[7:].strip()
    if not token:
        return None
    session = get_session()
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == _hash_token(token),
                               ApiToken.revoked_at.is_(None))
    ).first()
    # The lookup is by hash; compare again in constant time for good measure.
    if row is None or not hmac.compare_digest(row.token_hash, _hash_token(token)):
        return None
    user = session.get(User, row.user_id)
    return user if user and user.is_active else None


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
    get_session().add(LoginAttempt(email=normalise_email(email)[:320], client_ip=client_ip))


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
                from flask import current_app as app

                return app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def client_ip() -> str:
    return request.remote_addr or "-"
