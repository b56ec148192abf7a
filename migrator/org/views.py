"""The organisation tree and the page of one organisation (both within the user's scope)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlmodel import select

from migrator.auth.service import can_see_org, require_org, scope_paths, scoped
from migrator.core.panels import panels_for
from migrator.db import get_session
from migrator.groups.models import SourceGroup
from migrator.org.filters import text_filter
from migrator.org.models import Organisation
from migrator.people.models import Employee

bp = Blueprint("org", __name__, url_prefix="/orgs")


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


def _natural_name(name: str) -> list:
    """Sort key: "Школа 2" before "Школа 10"."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name.lower())]


def _natural(node) -> list:
    return _natural_name(node.org.name)


def render_panels(object_type: str, obj) -> list[Markup]:
    """Other features' panels for ``obj``, each rendered from its own (autoescaped) template."""
    return [Markup(render_template(t, **c))  # noqa: S704 (our own template's output)
            for t, c in panels_for(object_type, obj)]


SEARCH_LIMIT = 100  # organisations listed for a search by name or code
# Counts read by organisation id when at most this many organisations are counted
# (bound parameters of one IN list); more, and the scope's counts are read whole.
COUNT_BY_ID_LIMIT = 500


class TreeNode:
    """A shown organisation: own and subtree counts, its shown children and hidden depth."""

    __slots__ = ("org", "employees", "linked", "groups", "total_employees", "total_linked",
                 "total_groups", "descendants", "children", "parent")

    def __init__(self, org: Organisation):
        self.org = org
        self.employees = self.linked = self.groups = 0
        self.total_employees = self.total_linked = self.total_groups = 0
        self.descendants = 0  # organisations below, shown or not
        self.children: list[TreeNode] = []
        self.parent: Organisation | None = None  # shown with a search result


def _path_ids(path: str) -> list[int]:
    return [int(p) for p in path.strip("/").split("/") if p]


def count_nodes(nodes: list[TreeNode], within: list[str] | None) -> None:
    """Fill the nodes' own and subtree counts with three grouped queries (no query per node).

    ``within``: materialised paths whose subtrees hold every node (``None``: the whole
    tree). Each organisation's own counts are added to every shown ancestor in Python.
    The organisations below the shown ones are found first: when they are few (a search's
    matches are mostly leaves), only their employees and groups are counted, not those of
    the whole scope.
    """
    conn = get_session().connection()  # plain rows: no ORM loading for thousands of them
    shown = {n.org.id: n for n in nodes}
    in_scope = None
    if within is not None:
        in_scope = sa.select(Organisation.id).where(
            sa.or_(*[Organisation.path.startswith(p) for p in within]) if within else sa.false())
    orgs = sa.select(Organisation.id, Organisation.path)
    emp = sa.select(Employee.org_id, sa.func.count(), sa.func.count(Employee.max_user_id)
                    ).group_by(Employee.org_id)
    grp = sa.select(SourceGroup.org_id, sa.func.count()).group_by(SourceGroup.org_id)
    if in_scope is not None:
        orgs = orgs.where(Organisation.id.in_(in_scope))
    by_key = {str(i): node for i, node in shown.items()}  # path segments are ids as text
    counted: dict[int, list[TreeNode]] = {}  # organisation id -> its shown ancestors
    every = conn.execute(orgs).all()
    for org_id, path in every:
        ancestors = [by_key[k] for k in path.split("/") if k in by_key]
        if ancestors:
            counted[org_id] = ancestors
    if len(counted) < len(every) and len(counted) <= COUNT_BY_ID_LIMIT:
        emp = emp.where(Employee.org_id.in_(list(counted)))
        grp = grp.where(SourceGroup.org_id.in_(list(counted)))
    elif in_scope is not None:
        emp = emp.where(Employee.org_id.in_(in_scope))
        grp = grp.where(SourceGroup.org_id.in_(in_scope))
    employees = {org_id: (n, linked) for org_id, n, linked in conn.execute(emp)}
    groups = dict(conn.execute(grp).all())
    for org_id, ancestors in counted.items():
        n, linked = employees.get(org_id, (0, 0))
        g = groups.get(org_id, 0)
        for node in ancestors:
            node.total_employees += n
            node.total_linked += linked
            node.total_groups += g
            if node.org.id == org_id:
                node.employees, node.linked, node.groups = n, linked, g
            else:
                node.descendants += 1


def _visible(org: Organisation | None, paths: list[str] | None) -> bool:
    """``can_see_org`` with the scope's paths already at hand (no query per organisation)."""
    return org is not None and (paths is None or any(org.path.startswith(p) for p in paths))


def _scope_roots(paths: list[str] | None) -> list[Organisation]:
    """The top organisations of the user's scope (the tree's roots for an administrator)."""
    session = get_session()
    if paths is None:
        return list(session.scalars(sa.select(Organisation)
                                    .where(Organisation.parent_id.is_(None))))
    tops = [p for p in set(paths) if not any(p != q and p.startswith(q) for q in paths)]
    ids = [_path_ids(p)[-1] for p in tops]
    return list(session.scalars(sa.select(Organisation).where(Organisation.id.in_(ids))))


@bp.get("/")
@login_required
def tree():
    """The top of the tree (or of ``?root=CODE``) two levels deep, or a search (``?q=``).

    Deeper levels are reached by drilling down (``?root=``): at region scale a page with all
    2,000 organisations was too slow and too long to read.
    """
    session = get_session()
    paths = scope_paths(current_user)
    text = request.args.get("q", "").strip()
    root_code = request.args.get("root", "").strip()
    root, crumbs, found, more = None, [], [], False
    if text:
        query = scoped(sa.select(Organisation), Organisation.id).where(
            text_filter(text, Organisation.name, Organisation.code)
        ).order_by(Organisation.depth, Organisation.name).limit(SEARCH_LIMIT + 1)
        orgs = list(session.scalars(query))
        more = len(orgs) > SEARCH_LIMIT
        found = [TreeNode(o) for o in orgs[:SEARCH_LIMIT]]
        count_nodes(found, paths)
        tops = found
        parents = {o.id: o for o in session.scalars(sa.select(Organisation).where(
            Organisation.id.in_({n.org.parent_id for n in found if n.org.parent_id})))}
        for node in found:
            parent = parents.get(node.org.parent_id)
            node.parent = parent if _visible(parent, paths) else None
    else:
        if root_code:
            root = require_org(session.exec(
                select(Organisation).where(Organisation.code == root_code)).first())
            tops = [TreeNode(root)]
            ancestor_ids = _path_ids(root.path)[:-1]
            if ancestor_ids:
                by_id = {o.id: o for o in session.scalars(
                    sa.select(Organisation).where(Organisation.id.in_(ancestor_ids)))}
                crumbs = [by_id[i] for i in ancestor_ids if _visible(by_id.get(i), paths)]
        else:
            tops = [TreeNode(o) for o in _scope_roots(paths)]
        children = session.scalars(sa.select(Organisation).where(
            Organisation.parent_id.in_([t.org.id for t in tops]))).all() if tops else []
        by_parent = {t.org.id: t for t in tops}
        child_nodes = []
        for org in children:
            node = TreeNode(org)
            by_parent[org.parent_id].children.append(node)
            child_nodes.append(node)
        count_nodes(tops + child_nodes, [root.path] if root is not None else paths)
        for t in tops:
            t.children.sort(key=_natural)
        tops.sort(key=_natural)
    total = session.scalar(scoped(sa.select(sa.func.count()).select_from(Organisation),
                                  Organisation.id))
    return render_template("org/tree.html", roots=tops, count=total, root=root, crumbs=crumbs,
                           q=text, found=found, more=more, search_limit=SEARCH_LIMIT)


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
