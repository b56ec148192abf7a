"""The list of employees (search, filters, sorting) and the page of one employee."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlmodel import select

from migrator.attention.service import text_of
from migrator.auth.service import require_org, roles_required, scoped
from migrator.core.confirm import confirm_action
from migrator.core.pagination import paginate
from migrator.core.panels import panels_for
from migrator.core.urls import local_path
from migrator.db import get_session
from migrator.engine import unlink
from migrator.groups.models import GroupMember, SourceGroup
from migrator.groups.service import member_state
from migrator.org.filters import org_filter, org_options
from migrator.org.models import Organisation
from migrator.people import identity
from migrator.people.forms import KeepForm, UnlinkForm
from migrator.people.models import Employee, InviteToken
from migrator.people.search import search_filter

bp = Blueprint("people", __name__, url_prefix="/employees")

LINKED_CHOICES = {"yes": _l("linked to Max"), "no": _l("not linked to Max")}
# The list counts matching employees up to ``EMPLOYEE_COUNT_LIMIT`` (config) and then shows
# "1000+".


def render_panels(object_type: str, obj) -> list[Markup]:
    """Other features' panels for ``obj``, each rendered from its own (autoescaped) template."""
    return [Markup(render_template(t, **c))  # noqa: S704 (our own template's output)
            for t, c in panels_for(object_type, obj)]


@bp.get("/")
@login_required
def employees():
    # Filters on the employee alone: the count needs no join with the organisations.
    rows = scoped(sa.select(Employee.id), Employee.org_id)
    text = request.args.get("q", "").strip()
    if text:
        rows = rows.where(search_filter(text))
    rows, org = org_filter(rows, Employee.org_id)
    linked = request.args.get("linked", "")
    if linked == "yes":
        rows = rows.where(Employee.max_user_id.is_not(None))
    elif linked == "no":
        rows = rows.where(Employee.max_user_id.is_(None))
    query = sa.select(Employee, Organisation).join(Organisation,
                                                   Organisation.id == Employee.org_id)
    if rows.whereclause is not None:
        query = query.where(rows.whereclause)
    # Ties are broken by name and e-mail (unique), so a page holds the same rows whichever
    # way the database finds them (the name order is the one of ix_employee_full_name).
    by_name = (Employee.full_name, Employee.email)
    page = paginate(query, sorts={"name": by_name, "email": Employee.email,
                                  "org": (Organisation.name, *by_name),
                                  "linked": (Employee.linked_at, *by_name)},
                    default_sort="name", per_page=current_app.config["PER_PAGE"],
                    count_query=rows,
                    count_limit=current_app.config["EMPLOYEE_COUNT_LIMIT"])
    return render_template("people/employees.html", page=page, orgs=org_options(),
                           linked_choices=LINKED_CHOICES, selected_org=org, args=request.args)


@bp.get("/<int:employee_id>")
@login_required
def detail(employee_id: int):
    session = get_session()
    emp = session.get(Employee, employee_id)
    if emp is None:
        abort(404)
    org = require_org(session.get(Organisation, emp.org_id))
    memberships = session.execute(
        scoped(sa.select(GroupMember, SourceGroup)
               .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
               .where(GroupMember.employee_id == emp.id), SourceGroup.org_id)
        .order_by(SourceGroup.name)
    ).all()
    groups = [(m, g, member_state(m, emp)) for m, g in memberships]
    invite = session.exec(
        select(InviteToken).where(InviteToken.employee_id == emp.id)
        .order_by(InviteToken.created_at.desc())
    ).first()
    return render_template("people/detail.html", emp=emp, org=org, groups=groups,
                           invite=invite, panels=render_panels("employee", emp),
                           items=[(item, text_of(item)) for item in identity.open_items(emp)],
                           last_unlink=unlink.latest(emp),
                           others=_same_account(emp))


def _same_account(emp: Employee) -> list[Employee]:
    """Other records in the user's scope linked to the same Max account (one person, two
    records)."""
    if emp.max_user_id is None:
        return []
    return list(get_session().scalars(scoped(
        sa.select(Employee).where(Employee.max_user_id == emp.max_user_id,
                                  Employee.id != emp.id), Employee.org_id)
        .order_by(Employee.id).limit(20)))


def _employee_in_scope(employee_id: int) -> Employee:
    emp = get_session().get(Employee, employee_id)
    if emp is None:
        abort(404)
    require_org(get_session().get(Organisation, emp.org_id))
    return emp


def _back(emp: Employee) -> str:
    return local_path(request.values.get("next")) or url_for("people.detail",
                                                             employee_id=emp.id)


@bp.route("/<int:employee_id>/unlink", methods=["GET", "POST"])
@login_required
@roles_required("admin", "coordinator")
def unlink_account(employee_id: int):
    """Unlink the employee's Max account (or unlink and invite again): what will happen,
    the reason, then the decision."""
    emp = _employee_in_scope(employee_id)
    form = UnlinkForm()

    def act() -> str:
        rebind = form.action.data == "rebind"
        unlink.request_unlink(emp, current_user, form.reason_text, rebind=rebind)
        if rebind:
            return _("The Max account was unlinked and a new invitation is sent to the "
                     "employee's e-mail. The account is removed from the chats the tool "
                     "added it to at the next run.")
        return _("The Max account was unlinked. It is removed from the chats the tool added "
                 "it to at the next run.")

    outcome = confirm_action(form, check=lambda: unlink.check(emp, current_user), act=act,
                             done=lambda: _back(emp), refusals=(unlink.UnlinkRefused,))
    if outcome.response is not None:
        return outcome.response
    refused = outcome.refused
    return render_template("people/unlink.html", emp=emp, form=form, refused=refused,
                           chats=unlink.chats_to_leave(emp) if refused is None else [],
                           items=[(item, text_of(item)) for item in identity.open_items(emp)],
                           next=local_path(request.values.get("next"))), outcome.status


class _NothingToReview(Exception):
    pass


@bp.route("/<int:employee_id>/keep", methods=["GET", "POST"])
@login_required
@roles_required("admin", "coordinator")
def keep_link(employee_id: int):
    """Keep a questioned link: the coordinator checked that the account is the employee's."""
    emp = _employee_in_scope(employee_id)
    form = KeepForm()
    items = [(item, text_of(item)) for item in identity.open_items(emp)]

    def check() -> None:
        if not items:
            raise _NothingToReview(_("There is nothing to review for this employee's Max "
                                     "account."))

    def act() -> str:
        identity.keep_link(emp, form.reason_text, current_user)
        return _("The link is kept; the review is closed.")

    outcome = confirm_action(form, check=check, act=act, done=lambda: _back(emp),
                             refusals=(_NothingToReview, identity.KeepRefused))
    if outcome.response is not None:
        return outcome.response
    return render_template("people/keep.html", emp=emp, form=form, refused=outcome.refused,
                           items=items, next=local_path(request.values.get("next"))
                           ), outcome.status
