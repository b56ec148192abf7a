"""Organisation tree services: create/update with materialised paths, subtree queries."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from migrator.db import get_session, utcnow
from migrator.org.models import Organisation


class OrgError(ValueError):
    pass


def get_by_code(code: str) -> Organisation | None:
    return get_session().exec(select(Organisation).where(Organisation.code == code)).first()


def save_organisation(code: str, name: str, parent_code: str | None = None,
                      head_email: str | None = None) -> Organisation:
    """Create or update one organisation (not committed); keeps the subtree's paths right."""
    session = get_session()
    parent = None
    if parent_code:
        parent = get_by_code(parent_code)
        if parent is None:
            raise OrgError(f"unknown parent organisation {parent_code!r}")
    org = get_by_code(code)
    if org is None:
        org = Organisation(code=code, name=name)
        session.add(org)
    if parent is not None and org.id is not None and (
        parent.id == org.id or parent.path.startswith(org.path)
    ):
        raise OrgError(f"{code!r} cannot be placed under its own descendant {parent_code!r}")
    org.name = name
    org.head_email = head_email.strip().lower() if head_email else None
    org.parent_id = parent.id if parent else None
    org.updated_at = utcnow()
    session.flush()
    new_path = (parent.path if parent else "/") + f"{org.id}/"
    if org.path != new_path:
        old_path = org.path
        if old_path != "/":
            # Move the subtree: rewrite every descendant's path prefix and depth.
            descendants = session.exec(
                select(Organisation).where(Organisation.path.startswith(old_path),
                                           Organisation.id != org.id)
            ).all()
            for d in descendants:
                d.path = new_path + d.path[len(old_path):]
                d.depth = d.path.count("/") - 2
        org.path = new_path
        org.depth = new_path.count("/") - 2
        session.flush()
    return org


def subtree_ids(org: Organisation):
    """A SELECT of the ids of ``org`` and everything below it."""
    return sa.select(Organisation.id).where(Organisation.path.startswith(org.path))
