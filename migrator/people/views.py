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
from migrator.db import get_engine, get_session, is_sqlite
from migrator.groups.models import GroupMember, SourceGroup
from migrator.groups.service import member_state
from migrator.org.filters import org_filter, org_options
from migrator.org.models import Organisation
from migrator.people.models import Employee, InviteToken

bp = Blueprint("people", __name__, url_prefix="/employees")

LINKED_CHOICES = {"yes": _l("linked to Max"), "no": _l("not linked to Max")}
# The list counts matching employees up to ``EMPLOYEE_COUNT_LIMIT`` (config) and then shows
# "1000+".


def _like_escape(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def search_filter(text: str):
    """The full name contains ``text`` (any case) or the e-mail starts with it.

    PostgreSQL: ``ILIKE``, served by the trigram GIN indexes of migration 0009 when pg_trgm
    is installed. SQLite: its ``LIKE`` already ignores the case of ASCII letters (no
    ``lower()`` call per row), and the usual capitalisations of a Cyrillic search ("иван",
    "Иван", "ИВАН") are tried. E-mails are stored lower-cased.
    """
    email = Employee.email.like(_like_escape(text.lower()) + "%", escape="/")
    if is_sqlite(get_engine()):
        variants = {text, text.lower(), text.upper(), text.capitalize(), text.title()}
        return sa.or_(*[Employee.full_name.like(f"%{_like_escape(v)}%", escape="/")
                        for v in sorted(variants)], email)
    return sa.or_(Employee.full_name.ilike(f"%{_like_escape(text)}%", escape="/"), email)


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
    page = paginate(query, sorts={"name": Employee.full_name, "email": Employee.email,
                                  "org": Organisation.name, "linked": Employee.linked_at},
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
                           invite=invite, panels=render_panels("employee", emp))
