"""Sign-in and sign-out."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from migrator.audit.service import Actor, record
from migrator.auth import service
from migrator.auth.forms import LoginForm
from migrator.db import get_session, utcnow

bp = Blueprint("auth", __name__)
log = logging.getLogger("migrator.auth")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(
        target
    ).netloc:
        return target
    return url_for("core.dashboard")


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
            record("auth.login_throttled", object_type="user", summary={"email": email},
                   actor=Actor("user", None, email))
            session.commit()
            return render_template("auth/login.html", form=form), 429
        user = service.get_user_by_email(email)
        if user is not None and user.is_active and service.check_password(user, form.password.data):
            service.clear_failed_logins(email)
            user.last_login_at = utcnow()
            login_user(user)
            record("auth.login", object_type="user", object_id=user.id,
                   actor=Actor("user", str(user.id), user.email))
            session.commit()
            log.info("user %s signed in", user.email)
            return redirect(_safe_next(request.args.get("next")))
        service.note_failed_login(email, ip)
        record("auth.login_failed", object_type="user", summary={"email": email},
               actor=Actor("user", None, email))
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
    get_session().commit()
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))
