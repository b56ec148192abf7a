"""The list of employees (search, filters, sorting) and the page of one employee."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from markupsafe import Markup
from sqlmodel import select

from migrator.auth.service import require_org, scoped
from migrator.core.pagination import paginate
from migrator.core.panels import panels_for
from migrator.db import get_session
from migrator.groups.models import GroupMember, SourceGroup
from migrator.groups.service import member_state
from migrator.org.filters import org_filter, org_options, text_filter
from migrator.org.models import Organisation
from migrator.people.models import Employee, InviteToken

bp = Blueprint("people", __name__, url_prefix="/employees")

LINKED_CHOICES = {"yes": _l("linked to Max"), "no": _l("not linked to Max")}


def render_panels(object_type: str, obj) -> list[Markup]:
    """Other features' panels for ``obj``, each rendered from its own (autoescaped) template."""
    return [Markup(render_template(t, **c))  # noqa: S704 (our own template's output)
            for t, c in panels_for(object_type, obj)]


@bp.get("/")
@login_required
def employees():
    query = sa.select(Employee, Organisation).join(Organisation,
                                                   Organisation.id == Employee.org_id)
    query = scoped(query, Employee.org_id)
    text = request.args.get("q", "").strip()
    if text:
        query = query.where(text_filter(text, Employee.full_name, Employee.email))
    query, org = org_filter(query, Employee.org_id)
    linked = request.args.get("linked", "")
    if linked == "yes":
        query = query.where(Employee.max_user_id.is_not(None))
    elif linked == "no":
        query = query.where(Employee.max_user_id.is_(None))
    page = paginate(query, sorts={"name": Employee.full_name, "email": Employee.email,
                                  "org": Organisation.name, "linked": Employee.linked_at},
                    default_sort="name", per_page=current_app.config["PER_PAGE"])
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
                           invite=invite, panels=render_panels("employee", emp))
