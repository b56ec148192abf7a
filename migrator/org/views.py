"""The organisation tree and the page of one organisation (both within the user's scope)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import login_required
from markupsafe import Markup
from sqlmodel import select

from migrator.auth.service import can_see_org, require_org, scoped
from migrator.core.panels import panels_for
from migrator.db import get_session
from migrator.groups.models import SourceGroup
from migrator.org.models import Organisation
from migrator.people.models import Employee

bp = Blueprint("org", __name__, url_prefix="/orgs")


class Node:
    """An organisation in the rendered tree with its own and its subtree's counts."""

    __slots__ = ("org", "employees", "linked", "groups", "children", "total_employees",
                 "total_linked", "total_groups")

    def __init__(self, org: Organisation, employees: int, linked: int, groups: int):
        self.org = org
        self.employees, self.linked, self.groups = employees, linked, groups
        self.total_employees, self.total_linked, self.total_groups = employees, linked, groups
        self.children: list[Node] = []


def _counts_query():
    """Organisations with their own employee, linked-employee and group counts."""
    emp = (
        sa.select(Employee.org_id, sa.func.count().label("n"),
                  sa.func.count(Employee.max_user_id).label("linked"))
        .group_by(Employee.org_id).subquery()
    )
    grp = sa.select(SourceGroup.org_id, sa.func.count().label("n")).group_by(
        SourceGroup.org_id).subquery()
    return (
        sa.select(Organisation, sa.func.coalesce(emp.c.n, 0), sa.func.coalesce(emp.c.linked, 0),
                  sa.func.coalesce(grp.c.n, 0))
        .outerjoin(emp, emp.c.org_id == Organisation.id)
        .outerjoin(grp, grp.c.org_id == Organisation.id)
    )


def build_tree(rows) -> list[Node]:
    """Nest ``(org, employees, linked, groups)`` rows; orgs whose parent is absent are roots."""
    nodes = {org.id: Node(org, n, linked, g) for org, n, linked, g in rows}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.org.parent_id)
        (parent.children if parent else roots).append(node)
    for node in sorted(nodes.values(), key=lambda n: -n.org.depth):
        parent = nodes.get(node.org.parent_id)
        if parent is not None:
            parent.total_employees += node.total_employees
            parent.total_linked += node.total_linked
            parent.total_groups += node.total_groups
    for node in nodes.values():
        node.children.sort(key=_natural)
    roots.sort(key=_natural)
    return roots


def _natural_name(name: str) -> list:
    """Sort key: "Школа 2" before "Школа 10"."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name.lower())]


def _natural(node: Node) -> list:
    return _natural_name(node.org.name)


def render_panels(object_type: str, obj) -> list[Markup]:
    """Other features' panels for ``obj``, each rendered from its own (autoescaped) template."""
    return [Markup(render_template(t, **c))  # noqa: S704 (our own template's output)
            for t, c in panels_for(object_type, obj)]


@bp.get("/")
@login_required
def tree():
    rows = get_session().execute(scoped(_counts_query(), Organisation.id)).all()
    roots = build_tree(rows)
    return render_template("org/tree.html", roots=roots, count=len(rows))


@bp.get("/<code>")
@login_required
def detail(code: str):
    session = get_session()
    org = require_org(session.exec(select(Organisation).where(Organisation.code == code)).first())
    row = session.execute(_counts_query().where(Organisation.id == org.id)).one()
    children_rows = sorted(
        session.execute(_counts_query().where(Organisation.parent_id == org.id)).all(),
        key=lambda r: _natural_name(r[0].name))
    in_subtree = sa.select(Organisation.id).where(Organisation.path.startswith(org.path))
    subtree = {
        "orgs": session.scalar(sa.select(sa.func.count()).select_from(in_subtree.subquery())),
        "employees": session.scalar(sa.select(sa.func.count()).select_from(Employee)
                                    .where(Employee.org_id.in_(in_subtree))),
        "linked": session.scalar(sa.select(sa.func.count(Employee.max_user_id))
                                 .where(Employee.org_id.in_(in_subtree))),
        "groups": session.scalar(sa.select(sa.func.count()).select_from(SourceGroup)
                                 .where(SourceGroup.org_id.in_(in_subtree))),
    }
    parent = session.get(Organisation, org.parent_id) if org.parent_id else None
    if parent is not None and not can_see_org(parent):
        parent = None
    return render_template(
        "org/detail.html", org=org, own={"employees": row[1], "linked": row[2], "groups": row[3]},
        subtree=subtree, children=children_rows, parent=parent,
        panels=render_panels("organisation", org),
    )
