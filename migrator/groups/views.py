"""The list of source groups (search, filters, sorting) and the page of one group."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlmodel import select

from migrator.auth.service import can_write, scope_org_ids_subquery, scoped
from migrator.core.pagination import paginate
from migrator.core.panels import panels_for
from migrator.db import get_session
from migrator.groups.attention import attention_text, code_of, member_reason_text
from migrator.groups.models import PLATFORMS, GroupMember, SourceGroup
from migrator.groups.service import (
    MEMBER_STATES,
    coverage_for,
    get_group_by_key,
    member_state,
    member_state_condition,
    member_state_counts,
    refused_condition,
    refused_reason_counts,
)
from migrator.max.models import MaxChat
from migrator.org.filters import org_filter, org_options, text_filter
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.waves.models import Wave

bp = Blueprint("groups", __name__, url_prefix="/groups")
bp.add_app_template_filter(attention_text, "attention")  # also the progress attention page
bp.add_app_template_filter(member_reason_text, "member_reason")
bp.add_app_template_filter(code_of, "attention_code")

PLATFORM_LABELS = {"whatsapp": _l("WhatsApp"), "telegram": _l("Telegram"), "viber": _l("Viber"),
                   "vk": _l("VK"), "other": _l("other")}
MAPPING_CHOICES = {"linked": _l("linked to a Max chat"), "unlinked": _l("without a Max chat")}


def render_panels(object_type: str, obj) -> list[Markup]:
    """Other features' panels for ``obj``, each rendered from its own (autoescaped) template."""
    return [Markup(render_template(t, **c))  # noqa: S704 (our own template's output)
            for t, c in panels_for(object_type, obj)]


def visible_waves() -> list[Wave]:
    """Waves of the user's organisations and region-wide ones."""
    query = select(Wave).order_by(Wave.name)
    sub = scope_org_ids_subquery(current_user)
    if sub is not None:
        query = query.where(sa.or_(Wave.org_id.is_(None), Wave.org_id.in_(sub)))
    return list(get_session().exec(query).all())


@bp.get("/")
@login_required
def groups():
    query = (
        sa.select(SourceGroup, Organisation, MaxChat)
        .join(Organisation, Organisation.id == SourceGroup.org_id)
        .outerjoin(MaxChat, MaxChat.id == SourceGroup.max_chat_id)
    )
    query = scoped(query, SourceGroup.org_id)
    args = request.args
    text = args.get("q", "").strip()
    if text:
        query = query.where(text_filter(text, SourceGroup.name, SourceGroup.key))
    query, org = org_filter(query, SourceGroup.org_id)
    if args.get("platform") in PLATFORMS:
        query = query.where(SourceGroup.platform == args["platform"])
    if args.get("mapping") == "linked":
        query = query.where(SourceGroup.max_chat_id.is_not(None))
    elif args.get("mapping") == "unlinked":
        query = query.where(SourceGroup.max_chat_id.is_(None))
    waves = visible_waves()
    wave = args.get("wave", "")
    if wave.isdigit() and int(wave) in {w.id for w in waves}:
        query = query.where(SourceGroup.wave_id == int(wave))
    elif wave == "none":
        query = query.where(SourceGroup.wave_id.is_(None))
    if args.get("attention") == "1":
        query = query.where(SourceGroup.needs_attention.is_(True))
    page = paginate(query, sorts={"name": SourceGroup.name, "key": SourceGroup.key,
                                  "platform": SourceGroup.platform, "org": Organisation.name,
                                  "members": SourceGroup.member_count,
                                  "linked": SourceGroup.linked_at},
                    default_sort="name", per_page=current_app.config["PER_PAGE"])
    cover = coverage_for(g.id for g, _org, _chat in page.items)
    return render_template(
        "groups/groups.html", page=page, cover=cover, orgs=org_options(), waves=waves,
        wave_names={w.id: w.name for w in waves}, platforms=PLATFORM_LABELS,
        mapping_choices=MAPPING_CHOICES, selected_org=org, args=args,
    )


@bp.get("/<key>")
@login_required
def detail(key: str):
    session = get_session()
    group = get_group_by_key(key)
    org = session.get(Organisation, group.org_id)
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    wave = session.get(Wave, group.wave_id) if group.wave_id else None
    counts = member_state_counts(group)
    total = sum(counts.values())
    in_chat = counts["in_chat"]
    query = (sa.select(GroupMember, Employee)
             .join(Employee, Employee.id == GroupMember.employee_id)
             .where(GroupMember.group_id == group.id))
    state = request.args.get("state", "")
    if state in MEMBER_STATES:
        query = query.where(member_state_condition(state))
    # why Max refused members: a filter per reason (``any``: every refused member)
    reasons = refused_reason_counts(group)
    reason = request.args.get("reason", "")
    if reason == "any":
        query = query.where(refused_condition())
    elif reason in reasons:
        query = query.where(refused_condition(reason))
    else:
        reason = ""
    page = paginate(query, sorts={"name": Employee.full_name, "email": Employee.email,
                                  "status": GroupMember.state,
                                  "invited": GroupMember.invited_at},
                    default_sort="name", per_page=current_app.config["PER_PAGE"])
    members = [(m, e, member_state(m, e)) for m, e in page.items]
    return render_template(
        "groups/detail.html", group=group, org=org, chat=chat, wave=wave, counts=counts,
        total=total, in_chat=in_chat, page=page, members=members, state=state,
        reasons=reasons, reason=reason,
        states=MEMBER_STATES, platforms=PLATFORM_LABELS, panels=render_panels("group", group),
        can_write=can_write(),
    )
