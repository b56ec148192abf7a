"""``flask demo stage-sandbox``: the demo database mirrored into the Max sandbox."""

from __future__ import annotations

from sqlmodel import select

from migrator.db import get_session
from migrator.groups.models import GroupMember, SourceGroup
from migrator.max.models import REQUIRED_PERMISSIONS, MaxChat, MaxChatMember
from migrator.org.models import Organisation
from migrator.people.models import Employee
from migrator.sandbox.client import SandboxControl

# New chats that `stage-sandbox --new-chats` creates in the sandbox and adds the bot to, so the
# demo shows chat discovery: (fixed Max chat id, title, organisation whose staff are in it).
NEW_CHATS = [
    (-73_000_000_001, "Реченский район: оперативный штаб", "MO-REC"),
    (-73_000_000_002, "Школа № 3: родительский комитет", "MO-LES-SCH3"),
]
FALLBACK_OWNER = (909_999_999, "Владелец", "чата")  # owner of chats whose people are not in Max


def _sandbox_plan() -> dict:
    """What the sandbox should hold to match the database: users and chats."""
    session = get_session()
    users: dict[int, dict] = {}
    for uid, name in session.exec(select(Employee.max_user_id, Employee.full_name)
                                  .where(Employee.max_user_id.is_not(None))).all():
        first, _, last = (name or "Сотрудник").partition(" ")
        users[uid] = {"user_id": uid, "first_name": first, "last_name": last or None}
    # People who cannot be added: privacy settings (the demo's failed additions say so).
    private = set(session.exec(
        select(Employee.max_user_id).join(GroupMember, GroupMember.employee_id == Employee.id)
        .where(GroupMember.state == "unaddable", GroupMember.reason == "add.participant.privacy",
               Employee.max_user_id.is_not(None))).all())
    for uid in private:
        users[uid]["allow_add"] = False
    heads = dict(session.exec(select(Organisation.id, Employee.max_user_id)
                              .join(Employee, Employee.email == Organisation.head_email)
                              .where(Employee.max_user_id.is_not(None))).all())
    anyone = {}
    for org_id, uid in session.exec(select(Employee.org_id, Employee.max_user_id)
                                    .where(Employee.max_user_id.is_not(None))
                                    .order_by(Employee.id)).all():
        anyone.setdefault(org_id, uid)
    chats = []
    for chat in session.exec(select(MaxChat).order_by(MaxChat.id)).all():
        owner = chat.added_by_max_user_id if chat.added_by_max_user_id in users else None
        owner = owner or heads.get(chat.org_id) or anyone.get(chat.org_id) or FALLBACK_OWNER[0]
        members = set(session.exec(
            select(Employee.max_user_id)
            .join(GroupMember, GroupMember.employee_id == Employee.id)
            .join(SourceGroup, SourceGroup.id == GroupMember.group_id)
            .where(SourceGroup.max_chat_id == chat.id,
                   GroupMember.state.in_(("added", "joined")),
                   Employee.max_user_id.is_not(None))).all())
        members |= set(session.exec(select(MaxChatMember.max_user_id).where(
            MaxChatMember.chat_id == chat.id, MaxChatMember.is_present.is_(True))).all())
        members = {m for m in members if m in users}
        chats.append({
            "chat_id": chat.chat_id, "title": chat.title or f"Чат {chat.chat_id}",
            "owner_id": owner, "member_ids": sorted(members - {owner}),
            "is_admin": bool(chat.bot_is_admin),
            "permissions": sorted(chat.permissions) if chat.bot_is_admin else [],
            "bot_removed": chat.status == "removed",
        })
    if any(c["owner_id"] == FALLBACK_OWNER[0] for c in chats):
        uid, first, last = FALLBACK_OWNER
        users.setdefault(uid, {"user_id": uid, "first_name": first, "last_name": last})
    return {"users": users, "chats": chats, "orgs": {"heads": heads, "anyone": anyone}}


def stage_sandbox(sandbox_url: str, *, new_chats: bool = False) -> dict:
    """Mirror the database into the Max sandbox through its control surface: a user (same
    id, started the bot) per employee linked to Max, each chat with the same id and title,
    its owner, the people already added, and the bot with the rights the database records
    (in a chat the bot was removed from: added, then removed by the owner). Only what is
    missing is created, so a second run changes nothing.

    Run it BEFORE the webhook is subscribed: the sandbox then keeps the resulting updates
    for long polling (which nobody does), and the app sees no ``bot_added`` for chats it
    already knows (no new "added" dates or audit events at every start). With
    ``new_chats``, also create :data:`NEW_CHATS` and add the bot to them (run it after
    subscribing, so the app discovers them). Returns counts of what was created."""
    sandbox = SandboxControl(sandbox_url)
    done = {"users": 0, "chats": 0, "members": 0, "bots": 0, "new_chats": 0}
    try:
        plan = _sandbox_plan()
        get_session().commit()
        have_users = {u["user_id"] for u in sandbox.users()}
        for uid, user in plan["users"].items():
            if uid not in have_users:
                sandbox.create_user(**user)
                sandbox.start(uid)
                done["users"] += 1
        have = {c["chat_id"]: c for c in sandbox.chats()}
        wanted = list(plan["chats"])
        if new_chats:
            known = {c["chat_id"] for c in wanted}
            heads, anyone = plan["orgs"]["heads"], plan["orgs"]["anyone"]
            codes = dict(get_session().exec(select(Organisation.code, Organisation.id)).all())
            for chat_id, title, code in NEW_CHATS:
                org_id = codes.get(code)
                owner = heads.get(org_id) or anyone.get(org_id)
                if chat_id in known or owner is None:
                    continue  # discovered in an earlier run (mirrored above), or nobody to own it
                staff = list(get_session().exec(
                    select(Employee.max_user_id).where(Employee.org_id == org_id,
                                                       Employee.max_user_id.is_not(None))
                    .order_by(Employee.id)).all())
                wanted.append({"chat_id": chat_id, "title": title, "owner_id": owner,
                               "member_ids": [u for u in staff[:4] if u != owner],
                               "is_admin": True, "permissions": list(REQUIRED_PERMISSIONS),
                               "new": True})
        for spec in wanted:
            current = have.get(spec["chat_id"])
            if current is None:
                current = sandbox.create_chat(spec["title"], spec["owner_id"],
                                              chat_id=spec["chat_id"],
                                              member_ids=spec["member_ids"])
                done["chats"] += 1
                done["new_chats"] += bool(spec.get("new"))
            present = {m["user_id"] for m in current["members"]}
            for uid in spec["member_ids"]:
                if uid not in present:
                    sandbox.join(spec["chat_id"], uid)
                    done["members"] += 1
            if spec.get("bot_removed"):
                if current.get("bot_status") is None:  # added once, then removed (as in Max)
                    sandbox.add_bot(spec["chat_id"], spec["permissions"],
                                    is_admin=spec["is_admin"], by_user_id=spec["owner_id"])
                    sandbox.remove_bot(spec["chat_id"], by_user_id=spec["owner_id"])
                    done["bots"] += 1
            elif current.get("bot_status") != "active":
                sandbox.add_bot(spec["chat_id"], spec["permissions"],
                                is_admin=spec["is_admin"], by_user_id=spec["owner_id"])
                done["bots"] += 1
    finally:
        sandbox.close()
    return done

