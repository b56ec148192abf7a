"""Importing organisations, employees, source groups and memberships: all or nothing.

:func:`import_file` validates the whole file first and collects every bad row as
``(line, column, reason)``. Only a file without a single problem is written, upserting by
code / e-mail / key in one transaction, with one audit event for the whole import.

Validation reads what exists as plain tuples (no ORM objects), and the writers append new
rows in bulk (COPY on PostgreSQL, multi-row ``INSERT`` statements on SQLite) and update
changed ones in bulk too (see :func:`migrator.db.bulk_update`): a region's 300,000
memberships take seconds.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from migrator.audit.service import record
from migrator.auth.models import User, UserOrgScope
from migrator.auth.service import scope_paths
from migrator.db import (
    bulk_insert,
    bulk_update,
    get_session,
    next_ids,
    utcnow,
)
from migrator.directives.channels import apply_status
from migrator.directives.models import (
    CHANNEL_PLATFORMS,
    CHANNEL_STATUSES,
    PublicChannel,
    TransitionAct,
)
from migrator.directives.register import check_act, parse_date_text, save_act
from migrator.groups import states
from migrator.groups.models import PLATFORMS, GroupMember, SourceGroup
from migrator.imports.parser import KINDS, SPECS, Row, RowError, parse, shown_value
from migrator.org.models import Organisation
from migrator.org.service import save_organisation
from migrator.people.models import Employee

log = logging.getLogger("migrator.imports")

PREVIEW_ROWS = 20
CHUNK = 500

# Status of a row in the preview.
NEW, UPDATE, SAME = "new", "update", "same"


@dataclass
class PreviewRow:
    line: int
    values: dict[str, str]
    status: str  # new | update | same


@dataclass
class ImportResult:
    kind: str
    filename: str
    dry_run: bool
    ok: bool = False
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: int = 0  # data rows in the file
    columns: list[str] = field(default_factory=list)
    preview: list[PreviewRow] = field(default_factory=list)

    def summary(self) -> dict:
        return {"file": self.filename, "rows": self.rows, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged}


class _Plan:
    """What the validation found: errors, per-row statuses and the work to do."""

    def __init__(self, kind: str):
        self.kind = kind
        self.errors: list[RowError] = []
        self.statuses: dict[int, str] = {}  # line → status
        self.work: list = []
        self.valid_emails: dict[str, bool] = {}  # each distinct address is checked once

    def error(self, row: Row, column: str, reason) -> None:
        self.errors.append(RowError(row.line, column, reason,
                                    shown_value(row.values.get(column))))

    def status(self, row: Row, status: str) -> None:
        self.statuses[row.line] = status


# --- entry point ----------------------------------------------------------------------


def import_file(kind: str, filename: str, data: bytes, *, dry_run: bool,
                user: User | None = None) -> ImportResult:
    """Validate ``data`` as an import of ``kind`` and, unless ``dry_run``, write it.

    ``user`` restricts the import to that user's organisations (``None``: the command
    line, unrestricted). Nothing is written when any row is bad.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}")
    result = ImportResult(kind, filename, dry_run)
    denied = _permission_error(kind, user)
    if denied is not None:
        result.errors.append(RowError(0, "", denied))
        return result
    parsed = parse(kind, filename, data, current_app.config["IMPORT_MAX_BYTES"])
    result.columns = parsed.columns
    result.rows = len(parsed.rows)
    if parsed.fatal:
        result.errors = parsed.errors
        return result
    session = get_session()
    try:
        plan = _PLANNERS[kind](parsed.rows, set(parsed.columns), _Scope(user))
        result.errors = sorted(parsed.errors + plan.errors, key=lambda e: (e.line, e.column))
        counts = {NEW: 0, UPDATE: 0, SAME: 0}
        for status in plan.statuses.values():
            counts[status] += 1
        result.created, result.updated, result.unchanged = counts[NEW], counts[UPDATE], counts[SAME]
        result.preview = [PreviewRow(r.line, r.values, plan.statuses.get(r.line, SAME))
                          for r in parsed.rows[:PREVIEW_ROWS]]
        # The plan holds what the writer needs: the parsed rows (most of the memory of a
        # file of 300,000 rows) go before it runs.
        parsed.rows.clear()
        if result.errors or dry_run:
            session.rollback()
            result.ok = not result.errors
            return result
        _WRITERS[kind](plan)
        record(f"import.{kind}", object_type="import", org_id=_audit_org_id(user),
               summary=result.summary())
        session.commit()
    except IntegrityError:
        session.rollback()
        log.warning("import of %s from %r failed on a concurrent change", kind, filename)
        result.errors = [RowError(0, "", _l("the data changed while importing; try again"))]
        return result
    except BaseException:
        session.rollback()
        raise
    result.ok = True
    log.info("imported %s from %r: %d created, %d updated, %d unchanged",
             kind, filename, result.created, result.updated, result.unchanged)
    return result


def _audit_org_id(user: User | None) -> int | None:
    """A coordinator's single scope root (so they see their imports); else ``None``."""
    if user is None or user.role != "coordinator":
        return None
    roots = get_session().exec(
        select(UserOrgScope.org_id).where(UserOrgScope.user_id == user.id).limit(2)).all()
    return roots[0] if len(roots) == 1 else None


def _permission_error(kind: str, user: User | None):
    if user is None:
        return None
    if user.role not in ("admin", "coordinator"):
        return _l("your role may not import data")
    if kind == "organisations" and user.role != "admin":
        return _l("only administrators may import organisations")
    return None


class _Scope:
    def __init__(self, user: User | None):
        self.paths = None if user is None else scope_paths(user)

    @property
    def limited(self) -> bool:
        return self.paths is not None

    def allows(self, org_path: str) -> bool:
        return self.paths is None or any(org_path.startswith(p) for p in self.paths)


# --- shared checks --------------------------------------------------------------------


def _chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _check_lengths(kind: str, row: Row, plan: _Plan) -> bool:
    ok = True
    for column, limit in SPECS[kind].max_length.items():
        if len(row.values.get(column, "")) > limit:
            plan.error(row, column, _l("the value is longer than %(max)d characters", max=limit))
            ok = False
    return ok


def _required(row: Row, column: str, plan: _Plan) -> str | None:
    value = row.values.get(column, "")
    if not value:
        plan.error(row, column, _l("a value is required"))
        return None
    return value


# A plain ASCII address (dot-atom local part, letters-digits-hyphens labels, a TLD of letters)
# that ``validate_email`` accepts whenever it is not a special-use domain: checked by this one
# regular expression instead of the full validator (about 100 times faster). Anything else —
# quoted or international addresses, odd domains — goes through ``validate_email``.
_ATEXT = r"[A-Za-z0-9_%+'-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_EMAIL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")


def _plain_email(value: str) -> bool:
    if len(value) > 254 or not _PLAIN_EMAIL.fullmatch(value):
        return False
    local, _, domain = value.rpartition("@")
    domain = domain.lower()
    return (len(local) <= 64 and len(domain) <= 253 and "--" not in domain
            and not any(domain == d or domain.endswith("." + d)
                        for d in SPECIAL_USE_DOMAIN_NAMES))


def _valid_email(value: str) -> bool:
    if _plain_email(value):
        return True
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _email(row: Row, column: str, plan: _Plan, *, required: bool,
           known: dict | None = None) -> str | None:
    """The lower-cased e-mail of ``column``; "" when optional and empty; ``None`` if bad."""
    value = row.values.get(column, "")
    if not value:
        if required:
            plan.error(row, column, _l("a value is required"))
            return None
        return ""
    if known is not None and value.lower() in known:
        return value.lower()  # an address already stored was valid when it was imported
    valid = plan.valid_emails.get(value)
    if valid is None:
        valid = plan.valid_emails[value] = _valid_email(value)
    if not valid:
        plan.error(row, column, _l("not a valid e-mail address"))
        return None
    return value.lower()


def _unique(row: Row, column: str, value, seen: dict, plan: _Plan) -> bool:
    if value in seen:
        plan.error(row, column, _l("duplicate of line %(line)d", line=seen[value]))
        return False
    seen[value] = row.line
    return True


def _orgs_by_code(codes: Iterable[str]) -> dict[str, Organisation]:
    found = {}
    session = get_session()
    for chunk in _chunks(set(codes)):
        for org in session.exec(select(Organisation).where(Organisation.code.in_(chunk))):
            found[org.code] = org
    return found


def _org_ref(row: Row, column: str, orgs: dict[str, Organisation], scope: _Scope,
             plan: _Plan) -> Organisation | None:
    code = _required(row, column, plan)
    if code is None:
        return None
    org = orgs.get(code)
    if org is None:
        plan.error(row, column, _l("unknown organisation code"))
        return None
    if not scope.allows(org.path):
        plan.error(row, column, _l("organisation outside your scope"))
        return None
    return org


def _org_paths(ids: Iterable[int]) -> dict[int, str]:
    found = {}
    session = get_session()
    for chunk in _chunks(set(ids)):
        found.update(session.execute(
            sa.select(Organisation.id, Organisation.path).where(Organisation.id.in_(chunk))
        ).all())
    return found


# --- organisations --------------------------------------------------------------------


@dataclass
class _OrgWork:
    code: str
    name: str
    parent_code: str | None
    head_email: str | None
    depth: int = 0


def _plan_organisations(rows: list[Row], columns: set[str], scope: _Scope) -> _Plan:
    plan = _Plan("organisations")
    session = get_session()
    existing = {code: (oid, parent_id, name, head) for oid, code, parent_id, name, head in
                session.execute(sa.select(Organisation.id, Organisation.code,
                                          Organisation.parent_id, Organisation.name,
                                          Organisation.head_email))}
    code_by_id = {oid: code for code, (oid, *_rest) in existing.items()}
    # The tree as it will be: every organisation's parent code after the import.
    parent_of = {code: code_by_id.get(v[1]) for code, v in existing.items()}
    seen: dict[str, int] = {}
    candidates: list[tuple[Row, _OrgWork]] = []
    for row in rows:
        ok = _check_lengths("organisations", row, plan)
        code = _required(row, "code", plan)
        name = _required(row, "name", plan)
        head = _email(row, "head_email", plan, required=False)
        if code is not None and not _unique(row, "code", code, seen, plan):
            code = None
        if None in (code, name, head) or not ok:
            continue
        if "parent_code" in columns:
            parent = row.values.get("parent_code") or None
        else:
            parent = parent_of.get(code)
        if "head_email" not in columns and code in existing:
            head = existing[code][3] or ""
        candidates.append((row, _OrgWork(code, name, parent, head or None)))
    file_codes = set(seen)
    for _row, work in candidates:
        parent_of[work.code] = work.parent_code
    depth_of: dict[str, int] = {}
    for row, work in candidates:
        if work.parent_code and work.parent_code not in existing \
                and work.parent_code not in file_codes:
            plan.error(row, "parent_code", _l("unknown organisation code"))
            continue
        depth = _depth(work.code, parent_of, depth_of)
        if depth is None:
            plan.error(row, "parent_code", _l("this parent makes a cycle in the organisation tree"))
            continue
        work.depth = depth
        old = existing.get(work.code)
        if old is None:
            plan.status(row, NEW)
        elif (old[2], code_by_id.get(old[1]), old[3]) != (work.name, work.parent_code,
                                                          work.head_email):
            plan.status(row, UPDATE)
        else:
            plan.status(row, SAME)
            continue
        plan.work.append(work)
    plan.work.sort(key=lambda w: w.depth)
    return plan


def _depth(code: str, parent_of: dict[str, str | None], memo: dict[str, int]) -> int | None:
    """Depth of ``code`` in the future tree, or ``None`` when its ancestry loops."""
    chain, seen = [], set()
    node = code
    while node is not None and node not in memo:
        if node in seen:
            return None
        seen.add(node)
        chain.append(node)
        node = parent_of.get(node)
    base = -1 if node is None else memo[node]
    for i, c in enumerate(reversed(chain), 1):
        memo[c] = base + i
    return memo[code]


def _write_organisations(plan: _Plan) -> None:
    """Parents first (the work is sorted by depth in the future tree). New organisations of
    one depth are appended in bulk with reserved ids, so their paths are known up front;
    changed ones go through :func:`save_organisation`, which moves subtrees."""
    session = get_session()
    existing = set(session.execute(sa.select(Organisation.code)).scalars())
    by_depth: dict[int, list[_OrgWork]] = {}
    for work in plan.work:
        by_depth.setdefault(work.depth, []).append(work)
    for depth in sorted(by_depth):
        new = []
        for work in by_depth[depth]:
            if work.code in existing:
                save_organisation(work.code, work.name, work.parent_code, work.head_email)
            else:
                new.append(work)
        if new:
            session.flush()
            _insert_organisations(new)


def _insert_organisations(works: list[_OrgWork]) -> None:
    conn = get_session().connection()
    table = Organisation.__table__
    parents = _orgs_by_code(w.parent_code for w in works if w.parent_code)
    now = utcnow()
    rows = []
    for oid, work in zip(next_ids(conn, table, len(works)), works, strict=True):
        parent = parents.get(work.parent_code) if work.parent_code else None
        path = (parent.path if parent else "/") + f"{oid}/"
        rows.append({"id": oid, "code": work.code, "name": work.name,
                     "parent_id": parent.id if parent else None, "path": path,
                     "depth": path.count("/") - 2,
                     "head_email": work.head_email.strip().lower() if work.head_email else None,
                     "created_at": now, "updated_at": now})
    bulk_insert(conn, table, rows)


# --- employees ------------------------------------------------------------------------


def _plan_employees(rows: list[Row], columns: set[str], scope: _Scope) -> _Plan:
    plan = _Plan("employees")
    session = get_session()
    orgs = _orgs_by_code(r.values.get("org_code", "") for r in rows)
    emails = {r.values.get("email", "").lower() for r in rows}
    existing: dict[str, sa.Row] = {}
    for chunk in _chunks(emails):
        for emp in session.execute(
                sa.select(Employee.id, Employee.email, Employee.full_name, Employee.org_id,
                          Employee.position, Employee.phone)
                .where(Employee.email.in_(chunk))):
            existing[emp.email] = emp
    current_paths = _org_paths(e.org_id for e in existing.values()) if scope.limited else {}
    seen: dict[str, int] = {}
    for row in rows:
        ok = _check_lengths("employees", row, plan)
        email = _email(row, "email", plan, required=True)
        if email is not None and not _unique(row, "email", email, seen, plan):
            email = None
        name = _required(row, "full_name", plan)
        org = _org_ref(row, "org_code", orgs, scope, plan)
        if None in (email, name, org) or not ok:
            continue
        emp = existing.get(email)
        if emp is not None and scope.limited and not scope.allows(current_paths[emp.org_id]):
            plan.error(row, "email", _l("this e-mail belongs to an employee outside your scope"))
            continue
        new = {"full_name": name, "org_id": org.id}
        for column in ("position", "phone"):
            if column in columns:
                new[column] = row.values.get(column) or None
        if emp is None:
            plan.status(row, NEW)
            plan.work.append((None, {"email": email, **new}))
        elif any(getattr(emp, k) != v for k, v in new.items()):
            plan.status(row, UPDATE)
            plan.work.append((emp.id, new))
        else:
            plan.status(row, SAME)
    return plan


def _write_employees(plan: _Plan) -> None:
    now = utcnow()
    new = [{"position": None, "phone": None, **values, "max_user_id": None,
            "linked_at": None, "created_at": now, "updated_at": now}
           for emp_id, values in plan.work if emp_id is None]
    _write_rows(Employee.__table__, new, plan.work, now)


def _write_rows(table: sa.Table, new: list[dict], work: list, now) -> None:
    """Append the new rows; update the changed ones, grouped by the columns they set."""
    session = get_session()
    session.flush()
    conn = session.connection()
    bulk_insert(conn, table, new)
    updates: dict[tuple, list[dict]] = {}
    for row_id, values in work:
        if row_id is not None:
            updates.setdefault(tuple(values), []).append(
                {"id": row_id, **values, "updated_at": now})
    for rows in updates.values():
        bulk_update(conn, table, rows)


# --- groups ---------------------------------------------------------------------------


def _plan_groups(rows: list[Row], columns: set[str], scope: _Scope) -> _Plan:
    plan = _Plan("groups")
    session = get_session()
    orgs = _orgs_by_code(r.values.get("org_code", "") for r in rows)
    existing: dict[str, sa.Row] = {}
    for chunk in _chunks({r.values.get("key", "") for r in rows}):
        for group in session.execute(
                sa.select(SourceGroup.id, SourceGroup.key, SourceGroup.name,
                          SourceGroup.platform, SourceGroup.org_id, SourceGroup.owner_email)
                .where(SourceGroup.key.in_(chunk))):
            existing[group.key] = group
    current_paths = _org_paths(g.org_id for g in existing.values()) if scope.limited else {}
    seen: dict[str, int] = {}
    for row in rows:
        ok = _check_lengths("groups", row, plan)
        key = _required(row, "key", plan)
        if key is not None and not _unique(row, "key", key, seen, plan):
            key = None
        name = _required(row, "name", plan)
        platform = _required(row, "platform", plan)
        if platform is not None:
            platform = platform.lower()
            if platform not in PLATFORMS:
                plan.error(row, "platform", _l("unknown platform; allowed: %(platforms)s",
                                               platforms=", ".join(PLATFORMS)))
                platform = None
        owner = _email(row, "owner_email", plan, required=False)
        org = _org_ref(row, "org_code", orgs, scope, plan)
        if None in (key, name, platform, owner, org) or not ok:
            continue
        group = existing.get(key)
        if group is not None and scope.limited and not scope.allows(current_paths[group.org_id]):
            plan.error(row, "key", _l("this key belongs to a group outside your scope"))
            continue
        new = {"name": name, "platform": platform, "org_id": org.id}
        if "owner_email" in columns:
            new["owner_email"] = owner or None
        if group is None:
            plan.status(row, NEW)
            plan.work.append((None, {"key": key, **new}))
        elif any(getattr(group, k) != v for k, v in new.items()):
            plan.status(row, UPDATE)
            plan.work.append((group.id, new))
        else:
            plan.status(row, SAME)
    return plan


def _write_groups(plan: _Plan) -> None:
    now = utcnow()
    new = [{"owner_email": None, **values, "max_chat_id": None, "linked_at": None,
            "linked_by_id": None, "wave_id": None, "needs_attention": False,
            "attention_reason": None, "member_count": 0, "created_at": now, "updated_at": now}
           for group_id, values in plan.work if group_id is None]
    _write_rows(SourceGroup.__table__, new, plan.work, now)


# --- members --------------------------------------------------------------------------


def _plan_members(rows: list[Row], columns: set[str], scope: _Scope) -> _Plan:
    plan = _Plan("members")
    session = get_session()
    groups: dict[str, tuple[int, str]] = {}
    for chunk in _chunks({r.values.get("group_key", "") for r in rows}):
        for key, gid, path in session.execute(
            sa.select(SourceGroup.key, SourceGroup.id, Organisation.path)
            .join(Organisation, Organisation.id == SourceGroup.org_id)
            .where(SourceGroup.key.in_(chunk))
        ):
            groups[key] = (gid, path)
    people: dict[str, tuple[int, str, bool]] = {}  # e-mail -> id, org path, pressed Start
    for chunk in _chunks({r.values.get("email", "").lower() for r in rows}):
        for email, eid, path, linked in session.execute(
            sa.select(Employee.email, Employee.id, Organisation.path,
                      Employee.max_user_id.is_not(None))
            .join(Organisation, Organisation.id == Employee.org_id)
            .where(Employee.email.in_(chunk))
        ):
            people[email] = (eid, path, bool(linked))
    present: set[tuple[int, int]] = set()
    for chunk in _chunks({gid for gid, _path in groups.values()}):
        present.update((gid, eid) for gid, eid in session.execute(
            sa.select(GroupMember.group_id, GroupMember.employee_id)
            .where(GroupMember.group_id.in_(chunk))
        ))
    # (group id, employee id) -> the line that named it first: one key of two ints already
    # held by ``groups`` and ``people``, not a copy of each row's texts.
    seen: dict[tuple[int, int], int] = {}
    limits = SPECS["members"].max_length
    key_max, email_max = limits["group_key"], limits["email"]
    for row in rows:
        if not scope.limited:
            # The common row, decided without the checks' calls: a known group, a known
            # employee, not seen before. Any other row takes the full checks below.
            key, email = row.values.get("group_key", ""), row.values.get("email", "")
            group = groups.get(key) if len(key) <= key_max else None
            person = people.get(email.lower()) if len(email) <= email_max else None
            pair = (group[0], person[0]) if group is not None and person is not None else None
            if pair is not None and pair not in seen:
                seen[pair] = row.line
                if pair in present:
                    plan.statuses[row.line] = SAME
                else:
                    plan.statuses[row.line] = NEW
                    plan.work.append((*pair, person[2]))
                continue
        ok = _check_lengths("members", row, plan)
        key = _required(row, "group_key", plan)
        group = None
        if key is not None:
            group = groups.get(key)
            if group is None:
                plan.error(row, "group_key", _l("unknown group key"))
            elif not scope.allows(group[1]):
                plan.error(row, "group_key", _l("organisation outside your scope"))
                group = None
        email = _email(row, "email", plan, required=True, known=people)
        person = None
        if email is not None:
            person = people.get(email)
            if person is None or not scope.allows(person[1]):
                plan.error(row, "email", _l("no employee with this e-mail in your organisations")
                           if scope.limited else _l("unknown employee e-mail"))
                person = None
        if group is None or person is None or not ok:
            continue
        pair = (group[0], person[0])
        if not _unique(row, "email", pair, seen, plan):
            continue
        if pair in present:
            plan.status(row, SAME)
        else:
            plan.status(row, NEW)
            plan.work.append((*pair, person[2]))
    return plan


def _write_members(plan: _Plan) -> None:
    """Append the new memberships: ``linked`` (to be added at once) for people who already
    pressed Start, ``not_linked`` for the others; then add them to their groups' counts.
    ``plan.work`` holds (group id, employee id, pressed Start) of each new membership."""
    if not plan.work:
        return
    session = get_session()
    session.flush()
    now = utcnow()
    conn = session.connection()
    rows = sorted(  # in key order: the primary key's index grows at its end
        (gid, eid, states.LINKED if linked else states.NOT_LINKED, now if linked else None)
        for gid, eid, linked in plan.work)
    bulk_insert(conn, GroupMember.__table__, rows,
                columns=["group_id", "employee_id", "state", "next_attempt_at"],
                constants={"invited_at": None, "reminded_at": None, "reminder_count": 0,
                           "state_at": now, "reason": None, "attempts": 0,
                           "by_tool": False, "added_at": None, "created_at": now})
    added = Counter(gid for gid, _eid, _linked in plan.work)  # every one is new (planned so)
    groups = SourceGroup.__table__
    conn.execute(groups.update().where(groups.c.id == sa.bindparam("gid"))
                 .values(member_count=groups.c.member_count + sa.bindparam("n")),
                 [{"gid": gid, "n": n} for gid, n in sorted(added.items())])


# --- the register of transition orders -------------------------------------------------


def _plan_transition_acts(rows: list[Row], columns: set[str], scope: _Scope) -> _Plan:
    plan = _Plan("transition_acts")
    orgs = _orgs_by_code(r.values.get("org_code", "") for r in rows)
    existing = {a.org_id: a for a in get_session().exec(select(TransitionAct).where(
        TransitionAct.org_id.in_([o.id for o in orgs.values()])))} if orgs else {}
    seen: dict[str, int] = {}
    for row in rows:
        ok = _check_lengths("transition_acts", row, plan)
        org = _org_ref(row, "org_code", orgs, scope, plan)
        if org is not None and not _unique(row, "org_code", org.code, seen, plan):
            org = None
        v = row.values
        values, errors = check_act(v.get("act_number"), parse_date_text(v.get("act_date")),
                                   v.get("exemption"), v.get("exemption_reason"))
        for column, reason in errors.items():
            plan.error(row, column, reason)
        if org is None or errors or not ok:
            continue
        act = existing.get(org.id)
        if act is None:
            plan.status(row, NEW)
        elif any(getattr(act, k) != val for k, val in values.items()):
            plan.status(row, UPDATE)
        else:
            plan.status(row, SAME)
            continue
        plan.work.append((org, values))
    return plan


def _write_transition_acts(plan: _Plan) -> None:
    for org, values in plan.work:
        save_act(org, values)
    get_session().flush()


# --- public channels ------------------------------------------------------------------


def _plan_channels(rows: list[Row], columns: set[str], scope: _Scope) -> _Plan:
    plan = _Plan("channels")
    session = get_session()
    orgs = _orgs_by_code(r.values.get("org_code", "") for r in rows)
    existing: dict[str, PublicChannel] = {}
    for chunk in _chunks({r.values.get("url", "") for r in rows}):
        for ch in session.exec(select(PublicChannel).where(PublicChannel.url.in_(chunk))):
            existing[ch.url] = ch
    current_paths = _org_paths(c.org_id for c in existing.values()) if scope.limited else {}
    seen: dict[str, int] = {}
    for row in rows:
        ok = _check_lengths("channels", row, plan)
        url = _required(row, "url", plan)
        if url is not None and not url.lower().startswith(("https://", "http://")):
            plan.error(row, "url", _l("a link starting with https:// is required"))
            url = None
        if url is not None and not _unique(row, "url", url, seen, plan):
            url = None
        title = _required(row, "title", plan)
        platform = _required(row, "platform", plan)
        if platform is not None:
            platform = platform.lower()
            if platform not in CHANNEL_PLATFORMS:
                plan.error(row, "platform", _l("unknown platform; allowed: %(platforms)s",
                                               platforms=", ".join(CHANNEL_PLATFORMS)))
                platform = None
        status = _required(row, "status", plan)
        if status is not None:
            status = status.lower()
            if status not in CHANNEL_STATUSES:
                plan.error(row, "status", _l("unknown status; allowed: %(values)s",
                                             values=", ".join(CHANNEL_STATUSES)))
                status = None
        max_url = row.values.get("max_url", "") or None
        if max_url is not None and not max_url.lower().startswith(("https://", "http://")):
            plan.error(row, "max_url", _l("a link starting with https:// is required"))
            max_url = ""
        org = _org_ref(row, "org_code", orgs, scope, plan)
        if None in (url, title, platform, status, org) or max_url == "" or not ok:
            continue
        channel = existing.get(url)
        if channel is not None and scope.limited and \
                not scope.allows(current_paths[channel.org_id]):
            plan.error(row, "url", _l("this channel belongs to an organisation outside your "
                                      "scope"))
            continue
        new = {"org_id": org.id, "platform": platform, "title": title, "status": status}
        if "max_url" in columns:
            new["max_url"] = max_url
        if channel is None:
            plan.status(row, NEW)
            plan.work.append((None, {"url": url, **new}))
        elif any(getattr(channel, k) != v for k, v in new.items()):
            plan.status(row, UPDATE)
            plan.work.append((channel, new))
        else:
            plan.status(row, SAME)
    return plan


def _write_channels(plan: _Plan) -> None:
    session = get_session()
    now = utcnow()
    for channel, values in plan.work:
        status = values.pop("status")
        if channel is None:
            channel = PublicChannel(status=status, **values)
        else:
            for k, v in values.items():
                setattr(channel, k, v)
            channel.updated_at = now
        apply_status(channel, status)
        session.add(channel)
    session.flush()


_PLANNERS = {"organisations": _plan_organisations, "employees": _plan_employees,
             "groups": _plan_groups, "members": _plan_members,
             "transition_acts": _plan_transition_acts, "channels": _plan_channels}
_WRITERS = {"organisations": _write_organisations, "employees": _write_employees,
            "groups": _write_groups, "members": _write_members,
            "transition_acts": _write_transition_acts, "channels": _write_channels}
