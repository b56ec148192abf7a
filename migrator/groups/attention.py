"""Why a group needs attention: writers store a stable code, pages translate it.

``SourceGroup.attention_reason`` holds a code, optionally followed by its parameters as
JSON (``add_failed {"count":3}``), built by :func:`reason`. Every writer uses these codes;
:func:`attention_text` (the ``|attention`` template filter) renders one in the reader's
language. Any other text is shown as it is.
"""

from __future__ import annotations

import json
import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from migrator.max.models import PERMISSION_LABELS

BOT_REMOVED = "bot_removed"
NOT_LINKED = "not_linked"
BOT_RIGHTS = "bot_rights"
ADD_FAILED = "add_failed"
STEP_FAILED = "step_failed"
INVALID_EMAILS = "invalid_emails"
MEMBER_UNADDABLE = "member_unaddable"  # a member item: Max refused to add them for good
# a chat item: people Max will not add wait for the chat's join link, and it has none
CHAT_LINK_MISSING = "chat_link_missing"
# system items: why no Max work moves at all
MAX_AUTH_FAILED = "max_auth_failed"  # the 401 breaker is open
MAX_SUBSCRIPTION_LOST = "max_subscription_lost"  # Max no longer delivers to our webhook
# employee items (subject member, no group): whose Max account is linked
IDENTITY_CONFLICT = "identity_conflict"  # a second account pressed a used invitation
NAME_MISMATCH = "name_mismatch"  # the surname is not in the linked Max profile's name

MAX_LENGTH = 500  # SourceGroup.attention_reason
_PARAM_CHARS = 300  # a text parameter (an error message) is cut to this

STEP_KIND_LABELS = {  # msgids shared with the steps panel (engine/_status.html)
    "invite": _l("Invitations"), "add_members": _l("Adding members"),
    "announce": _l("Announcement"), "parallel_run": _l("Parallel run"),
    "cutover": _l("Cutover"),
}

# Why Max did not add a member: Max's FailedUserDetails codes and the engine's own codes
# for a call that failed as a whole (GroupMember.reason holds the code).
PERMANENT_ADD_CODES = ("add.participant.privacy", "add.participant.not.found")
MEMBER_REASONS = {
    "add.participant.privacy": _l("their Max privacy settings do not allow adding them to "
                                  "chats"),
    "add.participant.not.found": _l("Max does not know this account (it may have been "
                                    "deleted)"),
    "max.soft_failure": _l("Max did not do it and gave no reason; it will be tried again"),
    "max.rate_limited": _l("Max asked to slow down; it will be tried again"),
    "max.unavailable": _l("Max did not answer in time; it will be tried again"),
    "unknown": _l("Max refused without saying why"),
}


def member_reason_text(code: str | None) -> str:
    """Why a member is not in the chat, in the reader's language (never a raw code alone)."""
    if not code:
        return ""
    known = MEMBER_REASONS.get(code)
    if known is not None:
        return str(known)
    return _("Max refused with the code “%(code)s”", code=code)


_STORED = re.compile(r"^([a-z_]+)(?: (\{.*\}))?$", re.S)


def reason(code: str, **params) -> str:
    """The stored form of a reason (at most 500 characters)."""
    if code not in _TEXTS:
        raise ValueError(f"unknown attention reason {code!r}")
    if not params:
        return code
    clean = {k: (v[:_PARAM_CHARS] if isinstance(v, str) else v) for k, v in params.items()}
    text = f"{code} {json.dumps(clean, ensure_ascii=False, sort_keys=True, separators=(',', ':'))}"
    if len(text) > MAX_LENGTH:  # only possible with many long parameters: drop them
        return code
    return text


def parse(stored: str | None) -> tuple[str, dict] | None:
    """``(code, params)`` of a stored reason, or ``None`` for unrecognised free text."""
    if not stored:
        return None
    match = _STORED.match(stored)
    if match and match.group(1) in _TEXTS:
        try:
            params = json.loads(match.group(2)) if match.group(2) else {}
        except ValueError:
            params = None
        if isinstance(params, dict):
            return match.group(1), params
    return None


def code_of(stored: str | None) -> str | None:
    parsed = parse(stored)
    return parsed[0] if parsed else None


def _count(params: dict) -> int:
    try:
        return int(params.get("count") or 0)
    except (TypeError, ValueError):
        return 0


def _step_failed(p: dict) -> str:
    kind = str(p.get("kind") or "")
    return _("step “%(kind)s” failed: %(error)s",
             kind=STEP_KIND_LABELS.get(kind, kind),
             error=step_error_text(str(p.get("error") or "")) or "—")


def missing_text(missing: str | None) -> str:
    """What a chat lacks for the bot (Max's right names, or the chat's status), in words."""
    if not missing:
        return "—"
    if missing == "removed":
        return _("the bot was removed from the Max chat")
    names = [m.strip() for m in missing.split(",") if m.strip()]
    return ", ".join(str(PERMISSION_LABELS.get(n, n)) for n in names)


def _bot_rights(p: dict) -> str:
    if p.get("missing") == "removed":
        return _("the bot was removed from the Max chat")
    return _("the bot lacks rights in the chat: %(missing)s",
             missing=missing_text(p.get("missing")))


_TEXTS = {
    BOT_REMOVED: lambda p: _("the bot was removed from the Max chat"),
    NOT_LINKED: lambda p: _("not linked to a Max chat"),
    BOT_RIGHTS: _bot_rights,
    ADD_FAILED: lambda p: ngettext("%(num)d member could not be added to the Max chat",
                                   "%(num)d members could not be added to the Max chat",
                                   _count(p)),
    STEP_FAILED: _step_failed,
    MEMBER_UNADDABLE: lambda p: _("could not be added to the Max chat: %(reason)s",
                                  reason=member_reason_text(p.get("reason"))),
    CHAT_LINK_MISSING: lambda p: ngettext(
        "the chat has no join link: %(num)d person Max will not add is waiting for it. "
        "Create the chat's link in Max (chat settings); it is sent to them at the next check",
        "the chat has no join link: %(num)d people Max will not add are waiting for it. "
        "Create the chat's link in Max (chat settings); it is sent to them at the next check",
        _count(p)),
    MAX_AUTH_FAILED: lambda p: _(
        "Max refuses the bot token (401): all Max work is stopped. Set a valid token; the "
        "work resumes by itself once Max accepts it"),
    MAX_SUBSCRIPTION_LOST: lambda p: _(
        "Max stopped delivering updates to the webhook %(url)s (the subscription is gone): "
        "new chats and Start presses may be missed",
        url=p.get("url") or "—"),
    IDENTITY_CONFLICT: lambda p: _(
        "possibly someone else's link: Max account %(other)s (%(name)s) pressed this "
        "employee's invitation, already used by account %(bound)s. Keep the link, or unlink "
        "and rebind it",
        other=p.get("max_user_id") or "—", name=p.get("max_name") or "—",
        bound=p.get("bound_max_user_id") or "—"),
    NAME_MISMATCH: lambda p: _(
        "the linked Max account %(account)s is named “%(name)s”, which does not contain the "
        "employee's surname: check that it is theirs",
        account=p.get("max_user_id") or "—", name=p.get("max_name") or "—"),
    INVALID_EMAILS: lambda p: ngettext(
        "%(num)d member was not invited: the e-mail address is not usable",
        "%(num)d members were not invited: their e-mail addresses are not usable",
        _count(p)),
}


def attention_text(stored: str | None) -> str:
    """The reason in the current language (a step's error too); unknown text as it is;
    empty for none."""
    if not stored:
        return ""
    parsed = parse(stored)
    if parsed is None:
        return step_error_text(stored)
    code, params = parsed
    return _TEXTS[code](params)


# -- a step's last error -------------------------------------------------------------------
# The runner stores the reason a step waits or failed as English text (the engine's own
# record, also in the logs); pages show it through these patterns.

_STEP_TEXTS = {  # the runner's fixed reasons
    "delta sync": _l("the members' changes are synchronised again"),
    "the group is not linked to a Max chat": _l("the group is not linked to a Max chat"),
    "waiting for the first run of adding members": _l(
        "waiting for the first run of adding members"),
    "the announcement is not confirmed yet": _l("the announcement is not confirmed yet"),
    "the announcement footer (e-mail and СЭД stay official) is not set": _l(
        "the announcement has no footer saying that e-mail and the EDMS stay official: set "
        "it in the wave settings, then retry the step"),
    "the announcement may already be in the chat (a run stopped while posting it): check the "
    "Max chat, then retry or skip this step": _l(
        "the announcement may already be in the chat (a run stopped while posting it): "
        "check the Max chat, then retry or skip this step"),
}
# Max's error codes: what happened and what to do
MAX_ERROR_TEXTS = {
    "chat.not.found": _l("Max cannot find the chat: it may have been deleted or the bot "
                         "removed from it. Check the chat and link the group again"),
    "not.found": _l("Max cannot find what was asked for (the chat or the person may have "
                    "been deleted). Check the chat and the group's link"),
    "chat.denied": _l("Max does not let the bot into the chat: add the bot to the chat as "
                      "an administrator"),
    "bot.not.member": _l("the bot is not in the chat: add the bot to the chat as an "
                         "administrator"),
    "access.denied": _l("Max refused access: check the bot's rights in the chat"),
    "user.not.found": _l("Max does not know this person (the account may have been "
                         "deleted)"),
    "chat.member.limit": _l("the Max chat has reached its member limit: remove people who "
                            "left, or split the group"),
    "too.many.requests": _l("Max asked to slow down; it will be tried again by itself"),
    "service.unavailable": _l("Max is unavailable for now; it will be tried again by itself"),
    "connection.error": _l("Max did not answer; it will be tried again by itself"),
    "verify.token": _l("Max refuses the bot token: set a valid token"),
}
_MAX_ERROR = re.compile(r"^Max API error (\d+|no response)(?: ([\w.]+))?(?:: (.*?))?"
                        r"(?: \[[A-Z]+ [^\]]*\])?$", re.S)
_PREFLIGHT = re.compile(r"^pre-flight failed: (.*)$", re.S)
_COVERAGE = re.compile(r"^coverage (\d+)% \((\d+)/(\d+)\) is below (\d+)%$")
_INTERNAL = re.compile(r"^[A-Za-z_.]*(?:Error|Exception)\b")


def max_error_text(code: str | None, status: str | None = None) -> str:
    """A Max refusal in words that say what to do; never the bare code."""
    known = MAX_ERROR_TEXTS.get(code or "")
    if known is not None:
        return str(known)
    if status == "no response":
        return str(MAX_ERROR_TEXTS["connection.error"])
    if status and status.isdigit() and int(status) >= 500:
        return str(MAX_ERROR_TEXTS["service.unavailable"])
    return _("Max refused the request (answer %(status)s); if it repeats, tell the "
             "administrator", status=status or "—")


def step_error_text(text: str) -> str:
    """A step's stored error or waiting reason in the reader's language."""
    known = _STEP_TEXTS.get(text)
    if known is not None:
        return str(known)
    if m := _PREFLIGHT.match(text):
        return _("the Max chat is not ready: %(what)s", what=missing_text(m.group(1)))
    if m := _COVERAGE.match(text):
        return _("coverage %(pct)s%% (%(in_chat)s of %(total)s) is below the threshold "
                 "%(threshold)s%%", pct=m.group(1), in_chat=m.group(2), total=m.group(3),
                 threshold=m.group(4))
    if text.startswith("Max refuses the bot token"):
        return _TEXTS[MAX_AUTH_FAILED]({})
    if text.startswith("rate limited"):
        return str(MAX_ERROR_TEXTS["too.many.requests"])
    if m := _MAX_ERROR.match(text):
        return max_error_text(m.group(2), m.group(1))
    if _INTERNAL.match(text):
        return _("an internal error of the migrator; it will be tried again (details are in "
                 "the server log)")
    return text
