"""Sign-in and sign-out."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from migrator.audit.service import Actor, record
from migrator.auth import service
from migrator.auth.forms import LoginForm
from migrator.auth.models import ApiToken
from migrator.core.urls import local_path
from migrator.db import get_session, utcnow

bp = Blueprint("auth", __name__)
log = logging.getLogger("migrator.auth")
AUTH_AT, SEEN_AT = "_auth_at", "_seen_at"  # session keys: sign-in and last request (Unix s)
SEEN_RESOLUTION = 60  # the last-request time is refreshed at most once a minute


def start_session() -> None:
    now = int(time.time())
    flask_session.permanent = True  # the cookie lives as long as the absolute timeout
    flask_session[AUTH_AT] = flask_session[SEEN_AT] = now


@bp.before_app_request
def _session_timeouts():
    """A signed-in session ends after ``SESSION_IDLE_MINUTES`` without a request and
    ``SESSION_MAX_DAYS`` after the sign-in, whatever happens."""
    if "_user_id" not in flask_session:
        return
    cfg = current_app.config
    now = int(time.time())
    auth_at, seen_at = flask_session.get(AUTH_AT), flask_session.get(SEEN_AT)
    if (not isinstance(auth_at, int) or not isinstance(seen_at, int)
            or now - seen_at > cfg["SESSION_IDLE_MINUTES"] * 60
            or now - auth_at > cfg["SESSION_MAX_DAYS"] * 86400):
        logout_user()
        flask_session.clear()
        return
    if now - seen_at >= SEEN_RESOLUTION:
        flask_session[SEEN_AT] = now


def _safe_next(target: str | None) -> str:
    """A local path to go on to after signing in; anything else goes to the dashboard.

    Browsers read ``/\\host`` as ``//host``, and drop tabs and newlines: none of them may
    appear, so no target leads to another site.
    """
    return local_path(target) or url_for("core.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.dashboard"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        session = get_session()
        email, ip = form.email.data, service.client_ip()
        if service.login_locked(email, ip):
            form.email.errors.append(
                _("Too many failed sign-in attempts. Please wait 15 minutes and try again.")
            )
            service.audit_attempt("auth.login_throttled", "", ip)  # per address
            session.commit()
            return render_template("auth/login.html", form=form), 429
        user = service.get_user_by_email(email)
        password_ok = (user is not None and user.is_active
                       and service.check_password(user, form.password.data))
        if password_ok and service.second_factor_missing(user):
            form.code.errors.append(_("Admins must use a second factor. Ask for it to be set "
                                      "up (command line: users totp)."))
            return render_template("auth/login.html", form=form), 403
        if password_ok and not service.second_factor_ok(user, form.code.data):
            service.note_failed_login(email, ip)
            service.audit_attempt("auth.login_failed", email, ip)
            session.commit()
            form.code.errors.append(_("Wrong or missing one-time code."))
            return render_template("auth/login.html", form=form), 401
        if password_ok:
            service.clear_failed_logins(email)
            user.last_login_at = utcnow()
            login_user(user)
            start_session()
            record("auth.login", object_type="user", object_id=user.id,
                   actor=Actor("user", str(user.id), user.email))
            session.commit()
            log.info("user %s signed in", user.email)
            return redirect(_safe_next(request.args.get("next")))
        service.note_failed_login(email, ip)
        service.audit_attempt("auth.login_failed", email, ip)
        session.commit()
        form.password.errors.append(_("Wrong e-mail or password."))
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    record("auth.logout", object_type="user", object_id=current_user.id)
    service.end_sessions(current_user)  # a copied cookie stops working too
    get_session().commit()
    logout_user()
    flask_session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/tokens")
@login_required
def tokens():
    """The signed-in user's API tokens: prefix, created, last used, expiry, state."""
    rows = service.user_tokens(current_user)
    return render_template("auth/tokens.html", tokens=rows, state=service.token_state)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    token = get_session().get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)  # another user's token is not there for this user
    if service.revoke_token(token):
        get_session().commit()
        flash(_("The token %(prefix)s… is revoked.", prefix=token.prefix), "success")
    return redirect(url_for("auth.tokens"))
