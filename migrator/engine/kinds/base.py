"""What every step kind needs: the group's chat ready for the bot, the add-call size,
back-off."""

from __future__ import annotations

import logging
import random

from migrator.db import get_session
from migrator.engine.outcomes import Postpone
from migrator.groups import attention
from migrator.groups.models import SourceGroup
from migrator.max import service as max_service
from migrator.max.models import MaxChat

log = logging.getLogger("migrator.engine")

BATCH = 100  # ids per add call (Max limit)
PLATFORM_NAMES = {"whatsapp": "WhatsApp", "telegram": "Telegram", "viber": "Viber",
                  "vk": "VK", "other": "другом мессенджере"}


def backoff(attempts: int, base: float, cap: float) -> float:
    """Exponential back-off with ±20 % jitter (so retries of a batch spread out)."""
    delay = min(cap, base * (2 ** max(attempts - 1, 0)))
    return delay * random.uniform(0.8, 1.2)


def linked_chat(group: SourceGroup, client_factory=None) -> MaxChat:
    """The group's chat, ready for the bot to act in; otherwise postpone with attention.

    Rights that were missing are asked again (Max sends no update when an owner promotes
    the bot): within a minute, then backing off to every 10 minutes for 24 hours."""
    session = get_session()
    chat = session.get(MaxChat, group.max_chat_id) if group.max_chat_id else None
    if chat is None:
        raise Postpone("the group is not linked to a Max chat", 600,
                       attention=attention.reason(attention.NOT_LINKED))
    if (not chat.preflight_ok and client_factory is not None
            and max_service.rights_recheck_due(chat)):
        max_service.refresh_chat(chat.chat_id, client_factory())  # commits
        session.refresh(chat)
    if not chat.preflight_ok:
        missing = ", ".join(chat.missing_permissions) or chat.status
        delay = 600 if chat.status == "removed" else max_service.rights_recheck_interval(chat)
        raise Postpone(f"pre-flight failed: {missing}", min(delay, 600),
                       attention=attention.reason(attention.BOT_RIGHTS, missing=missing))
    return chat
