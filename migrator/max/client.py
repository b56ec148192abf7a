"""Synchronous, typed client for the Max Bot API (https://platform-api.max.ru).

Each method maps to one operation of the official OpenAPI schema (version 0.0.32) and
returns the JSON objects it describes as plain dicts (``Chat``, ``ChatMember``, ``Message``,
``BotInfo``, ``Update``), or a small dataclass where the client adds something (paging,
aggregation over several calls).

Every HTTP attempt first waits for the rate limiter; 429, 5xx, timeouts, connection
errors and result bodies saying ``success: false`` (:class:`MaxSoftFailure`) are retried
with exponential backoff and full jitter (or the server's ``Retry-After``; after a 429 the
limiter holds every process back as long), then raised as :mod:`migrator.max.errors`
exceptions. After every attempt
``on_call(method, path_template, status, latency_ms, chat_id)`` is called (``status`` is
``None`` when no answer came back), which the app uses for its audit trail.

The token travels only in the ``Authorization`` header and is never logged or put in an
exception text.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from migrator.max.errors import (
    MaxBadRequest,
    MaxError,
    MaxRateLimited,
    MaxSoftFailure,
    MaxUnavailable,
    error_class_for_status,
    redact,
)
from migrator.max.ratelimit import RateLimiter

log = logging.getLogger("migrator.max")

JSON = dict[str, Any]
OnCall = Callable[[str, str, "int | None", float, "int | None"], None]

MAX_TEXT_LENGTH = 4000  # NewMessageBody.text maxLength
MAX_IDS_PER_ADD = 100  # UserIdsList: at most 100 ids per request
MAX_MEMBERS_PAGE = 100  # GET /chats/{chatId}/members: count 1..100
MAX_RETRY_AFTER = 120.0  # seconds; a longer server hint is capped

# Rights the migration needs in every Max chat (DESIGN.md, pre-flight check).
REQUIRED_PERMISSIONS = frozenset({"read_all_messages", "add_remove_members", "pin_message"})
# Older permission names the API may still return, and their current equivalents.
_LEGACY_PERMISSIONS = {
    "post_edit_delete_message": "write",
    "edit_message": "edit",
    "delete_message": "delete",
}


@dataclass(frozen=True)
class MembersPage:
    """One page of ``GET /chats/{chatId}/members`` (``ChatMembersList``)."""

    members: list[JSON]
    marker: int | None  # pass back to get the next page; None on the last page


@dataclass(frozen=True)
class UpdatesBatch:
    """The answer of ``GET /updates`` (``UpdateList``)."""

    updates: list[JSON]
    marker: int | None  # pass back on the next call; earlier updates count as read


@dataclass
class AddMembersResult:
    """``ModifyMembersResult`` aggregated over the ≤100-id requests of one ``add_members``."""

    requested: int = 0  # distinct ids asked for
    calls: int = 0  # POST requests that got an answer
    failed_user_ids: list[int] = field(default_factory=list)
    # FailedUserDetails objects ({"error_code", "user_ids"}), merged per error_code
    failed_user_details: list[JSON] = field(default_factory=list)
    success: bool = True  # False if any answer said success=false

    @property
    def added_user_ids_count(self) -> int:
        """How many of the requested ids did not fail (new or already members)."""
        return self.requested - len(set(self.failed_user_ids))

    def reason_for(self, user_id: int) -> str | None:
        """The error code Max gave for ``user_id``, if it failed."""
        for detail in self.failed_user_details:
            if user_id in detail.get("user_ids", ()):
                return detail.get("error_code")
        if user_id in self.failed_user_ids:
            return "unknown"
        return None


@dataclass(frozen=True)
class BotRights:
    """What the bot may do in a chat, from ``GET /chats/{chatId}/members/me``."""

    is_admin: bool
    is_owner: bool
    permissions: frozenset[str]

    def missing(self, required: Iterable[str] = REQUIRED_PERMISSIONS) -> set[str]:
        """Required permissions the bot lacks (all of them if it is not an admin)."""
        required = set(required)
        if not self.is_admin and not self.is_owner:
            return required
        return required - self.permissions


def _normalise_permissions(perms: Iterable[str] | None) -> frozenset[str]:
    out: set[str] = set()
    for p in perms or ():
        out.add(p)
        if p in _LEGACY_PERMISSIONS:
            out.add(_LEGACY_PERMISSIONS[p])
    return frozenset(out)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _csv(values: Iterable[Any]) -> str:
    return ",".join(str(v) for v in values)


class MaxClient:
    """A Max Bot API client bound to one bot token.

    ``transport`` is passed to ``httpx.Client`` (tests wrap it to record traffic);
    ``sleep`` is what backoff waits with.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        limiter: RateLimiter | None = None,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        on_call: OnCall | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ValueError("a Max bot token is required")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.limiter = limiter
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_call = on_call
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": token, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"MaxClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MaxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return random.uniform(0, min(self.backoff_max, self.backoff_base * (2**attempt)))

    def _penalise(self, seconds: float) -> None:
        """Tell the limiter (and through it every process) to hold back after a 429."""
        penalise = getattr(self.limiter, "penalise", None)
        if penalise is None:
            return
        try:
            penalise(seconds)
        except Exception:  # a failed back-off record must not break the call
            log.exception("recording the 429 back-off failed")

    def _notify(
        self, method: str, template: str, status: int | None, latency_ms: float, chat_id: int | None
    ) -> None:
        if self.on_call is None:
            return
        try:
            self.on_call(method, template, status, latency_ms, chat_id)
        except Exception:  # the audit hook must never break an API call
            log.exception("on_call hook failed for %s %s", method, template)

    def _request(
        self,
        method: str,
        template: str,
        *,
        path_params: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        chat_id: int | None = None,
        idempotent: bool = True,
        timeout: float | None = None,
        result: bool = False,
    ) -> Any:
        """Send one API call with limiter, retries and the ``on_call`` hook; return its JSON.

        ``idempotent=False`` (sending a message, adding members, pinning: a second call
        would act twice) retries only what surely was not processed
        (429, 503, connection failures), never a read timeout or another 5xx. ``result=True``:
        the answer is a result body (``SimpleQueryResult``, ``ModifyMembersResult``) and
        ``success: false`` in it is a :class:`MaxSoftFailure`.
        """
        path = template.format(**(path_params or {}))
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            if self.limiter is not None:
                self.limiter.acquire()
            started = time.monotonic()
            status: int | None = None
            response: httpx.Response | None = None
            ambiguous = False  # the server may have acted on the request
            try:
                response = self._http.request(
                    method,
                    path,
                    params=query,
                    json=json,
                    timeout=timeout if timeout is not None else self.timeout,
                )
                status = response.status_code
            except httpx.TransportError as exc:
                ambiguous = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection error"
                error: MaxError | None = MaxUnavailable(
                    redact(f"{kind}: {type(exc).__name__}", self._token),
                    status=None,
                    code=kind.replace(" ", "."),
                    method=method,
                    path=template,
                )
            latency_ms = (time.monotonic() - started) * 1000.0
            self._notify(method, template, status, latency_ms, chat_id)

            if response is not None:
                if 200 <= response.status_code < 300:
                    log.debug("%s %s -> %s in %.0f ms", method, template, status, latency_ms)
                    data = self._json(response, method, template)
                    if not (result and isinstance(data, dict) and data.get("success") is False):
                        return data
                    error = MaxSoftFailure(
                        redact(str(data.get("message") or "success: false"), self._token),
                        status=response.status_code,
                        code="success.false",
                        method=method,
                        path=template,
                    )
                else:
                    error = self._error_from(response, method, template)
                    ambiguous = response.status_code >= 500 and response.status_code != 503
            assert error is not None

            if isinstance(error, MaxRateLimited):  # every process holds back, not just us
                self._penalise(error.retry_after if error.retry_after is not None
                               else self.backoff_base * (2**attempt))
            retry = error.retryable and attempt < self.max_retries
            if retry and not idempotent and ambiguous:
                retry = False
            if not retry:
                log.warning(
                    "%s %s failed after %d attempt(s): %s", method, template, attempt + 1, error
                )
                raise error
            delay = self._backoff(attempt, error.retry_after)
            log.info(
                "%s %s -> %s, retry %d/%d in %.2f s",
                method,
                template,
                status if status is not None else error.code,
                attempt + 1,
                self.max_retries,
                delay,
            )
            self._sleep(delay)
            attempt += 1

    def _json(self, response: httpx.Response, method: str, template: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise MaxUnavailable(
                "the answer is not JSON",
                status=response.status_code,
                code="bad.response",
                method=method,
                path=template,
            ) from exc

    def _error_from(self, response: httpx.Response, method: str, template: str) -> MaxError:
        code, message = "", response.reason_phrase or "error"
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = str(body.get("code") or body.get("error") or "")
            message = str(body.get("message") or message)
        cls = error_class_for_status(response.status_code)
        return cls(
            redact(message, self._token),
            status=response.status_code,
            code=redact(code, self._token),
            method=method,
            path=template,
            retry_after=_parse_retry_after(response.headers.get("Retry-After")),
        )

    # -- bot ---------------------------------------------------------------------------

    def get_me(self) -> JSON:
        """``GET /me``: the bot (``BotInfo``: ``user_id``, ``first_name``, ``username``...)."""
        return self._request("GET", "/me")

    # -- chats -------------------------------------------------------------------------

    def get_chat(self, chat_id: int) -> JSON:
        """``GET /chats/{chatId}``: the ``Chat`` object."""
        return self._request(
            "GET", "/chats/{chatId}", path_params={"chatId": chat_id}, chat_id=chat_id
        )

    def edit_chat(
        self,
        chat_id: int,
        *,
        title: str | None = None,
        pin: str | None = None,
        icon: JSON | None = None,
        notify: bool | None = None,
    ) -> JSON:
        """``PATCH /chats/{chatId}`` with a ``ChatPatch``; returns the updated ``Chat``."""
        body: JSON = {}
        if title is not None:
            if not 1 <= len(title) <= 200:
                raise MaxBadRequest("a title has 1 to 200 characters", code="client.validation")
            body["title"] = title
        if pin is not None:
            body["pin"] = pin
        if icon is not None:
            body["icon"] = icon
        if notify is not None:
            body["notify"] = notify
        return self._request(
            "PATCH", "/chats/{chatId}", path_params={"chatId": chat_id}, json=body, chat_id=chat_id
        )

    # -- members -----------------------------------------------------------------------

    def get_members(
        self,
        chat_id: int,
        *,
        marker: int | None = None,
        count: int = MAX_MEMBERS_PAGE,
        user_ids: Iterable[int] | None = None,
    ) -> MembersPage:
        """``GET /chats/{chatId}/members``: one page of ``ChatMember`` objects.

        With ``user_ids`` Max returns just those members (``marker``/``count`` are ignored).
        """
        if not 1 <= count <= MAX_MEMBERS_PAGE:
            raise MaxBadRequest("count must be 1..100", code="client.validation")
        # count is always sent: the schema's default for it is the string '20'
        params: dict[str, Any] = {"count": int(count), "marker": marker}
        if user_ids is not None:
            params = {"user_ids": _csv(user_ids), "count": int(count)}
        data = self._request(
            "GET",
            "/chats/{chatId}/members",
            path_params={"chatId": chat_id},
            params=params,
            chat_id=chat_id,
        )
        return MembersPage(members=list(data.get("members") or []), marker=data.get("marker"))

    def iter_members(self, chat_id: int, *, count: int = MAX_MEMBERS_PAGE) -> Iterator[JSON]:
        """Every member of the chat, following ``marker`` page by page."""
        marker: int | None = None
        seen_markers: set[int] = set()
        while True:
            page = self.get_members(chat_id, marker=marker, count=count)
            yield from page.members
            if page.marker is None or not page.members or page.marker in seen_markers:
                return
            seen_markers.add(page.marker)
            marker = page.marker

    def add_members(self, chat_id: int, user_ids: Iterable[int]) -> AddMembersResult:
        """``POST /chats/{chatId}/members`` in requests of at most 100 ids each.

        Ids are de-duplicated (order kept). Failures of all requests are collected, per id
        from ``failed_user_details``; an error answer (403, 404, ...) or a ``success: false``
        (:class:`MaxSoftFailure`, retryable) is raised as is, after the earlier batches went
        through: none of that batch counts as added.
        """
        ids = list(dict.fromkeys(int(u) for u in user_ids))
        result = AddMembersResult(requested=len(ids))
        details: dict[str, list[int]] = {}
        for start in range(0, len(ids), MAX_IDS_PER_ADD):
            batch = ids[start : start + MAX_IDS_PER_ADD]
            data = self._request(
                "POST",
                "/chats/{chatId}/members",
                path_params={"chatId": chat_id},
                json={"user_ids": batch},
                chat_id=chat_id,
                result=True,
                idempotent=False,  # a lost answer: the caller reads the members first
            )
            result.calls += 1
            if data.get("success") is False:
                result.success = False
            for uid in data.get("failed_user_ids") or ():
                if uid not in result.failed_user_ids:
                    result.failed_user_ids.append(uid)
            for detail in data.get("failed_user_details") or ():
                bucket = details.setdefault(str(detail.get("error_code", "")), [])
                bucket.extend(u for u in detail.get("user_ids") or () if u not in bucket)
        result.failed_user_details = [
            {"error_code": code, "user_ids": uids} for code, uids in details.items()
        ]
        # ids only named in details still count as failed
        for detail in result.failed_user_details:
            for uid in detail["user_ids"]:
                if uid not in result.failed_user_ids:
                    result.failed_user_ids.append(uid)
        return result

    def remove_member(self, chat_id: int, user_id: int, *, block: bool = False) -> JSON:
        """``DELETE /chats/{chatId}/members?user_id=..&block=..``: ``SimpleQueryResult``."""
        return self._request(
            "DELETE",
            "/chats/{chatId}/members",
            path_params={"chatId": chat_id},
            params={"user_id": int(user_id), "block": "true" if block else "false"},
            chat_id=chat_id,
            result=True,
        )

    def get_my_membership(self, chat_id: int) -> JSON:
        """``GET /chats/{chatId}/members/me``: the bot's own ``ChatMember``."""
        return self._request(
            "GET", "/chats/{chatId}/members/me", path_params={"chatId": chat_id}, chat_id=chat_id
        )

    def bot_rights(self, chat_id: int) -> BotRights:
        """Whether the bot is admin/owner in the chat, and its (normalised) permissions."""
        me = self.get_my_membership(chat_id)
        return BotRights(
            is_admin=bool(me.get("is_admin")),
            is_owner=bool(me.get("is_owner")),
            permissions=_normalise_permissions(me.get("permissions")),
        )

    def bot_permissions(self, chat_id: int) -> set[str]:
        """The bot's admin permissions in the chat (empty if it is not an admin)."""
        rights = self.bot_rights(chat_id)
        return set(rights.permissions) if (rights.is_admin or rights.is_owner) else set()

    def get_admins(self, chat_id: int) -> list[JSON]:
        """``GET /chats/{chatId}/members/admins``: the admins as ``ChatMember`` objects."""
        data = self._request(
            "GET",
            "/chats/{chatId}/members/admins",
            path_params={"chatId": chat_id},
            chat_id=chat_id,
        )
        return list(data.get("members") or [])

    # -- messages ----------------------------------------------------------------------

    def send_message(
        self,
        text: str,
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        format: str | None = None,  # noqa: A002 - the API's own name
        notify: bool = True,
        disable_link_preview: bool | None = None,
    ) -> JSON:
        """``POST /messages?chat_id=..`` (or ``user_id=..``); returns the sent ``Message``.

        The message id to pin or refer to is ``result["body"]["mid"]``.
        """
        if (chat_id is None) == (user_id is None):
            raise ValueError("give exactly one of chat_id or user_id")
        if len(text) > MAX_TEXT_LENGTH:
            raise MaxBadRequest(
                f"text has {len(text)} characters, at most {MAX_TEXT_LENGTH} allowed",
                code="client.validation",
            )
        if format is not None and format not in ("markdown", "html"):
            raise ValueError("format must be 'markdown', 'html' or None")
        # NewMessageBody requires text, attachments and link (both may be null)
        body: JSON = {"text": text, "attachments": None, "link": None, "notify": notify}
        if format is not None:
            body["format"] = format
        params: dict[str, Any] = {"chat_id": chat_id, "user_id": user_id}
        if disable_link_preview is not None:
            params["disable_link_preview"] = "true" if disable_link_preview else "false"
        data = self._request(
            "POST", "/messages", params=params, json=body, chat_id=chat_id, idempotent=False
        )
        return data["message"]

    def get_messages(
        self,
        chat_id: int,
        *,
        count: int = 50,
        from_: int | None = None,
        to: int | None = None,
    ) -> list[JSON]:
        """``GET /messages?chat_id=..``: the chat's ``Message`` objects, newest first.

        ``count`` 1-100; ``from_`` / ``to`` are the API's ``from`` / ``to`` timestamps (the
        newest and the oldest message time wanted). Returns ``MessageList.messages``.
        """
        if not 1 <= count <= 100:
            raise ValueError("count must be between 1 and 100")
        data = self._request(
            "GET",
            "/messages",
            params={"chat_id": chat_id, "count": count, "from": from_, "to": to},
            chat_id=chat_id,
        )
        return list(data.get("messages") or [])

    def pin_message(self, chat_id: int, message_id: str, *, notify: bool = True) -> JSON:
        """``PUT /chats/{chatId}/pin`` with ``{"message_id", "notify"}``: ``SimpleQueryResult``."""
        return self._request(
            "PUT",
            "/chats/{chatId}/pin",
            path_params={"chatId": chat_id},
            json={"message_id": str(message_id), "notify": notify},
            chat_id=chat_id,
            result=True,
            idempotent=False,  # a lost answer is checked by reading the pin, not retried
        )

    def unpin(self, chat_id: int) -> JSON:
        """``DELETE /chats/{chatId}/pin``: ``SimpleQueryResult``."""
        return self._request(
            "DELETE", "/chats/{chatId}/pin", path_params={"chatId": chat_id}, chat_id=chat_id,
            result=True,
        )

    def get_pinned(self, chat_id: int) -> JSON | None:
        """``GET /chats/{chatId}/pin``: the pinned ``Message``, or None."""
        data = self._request(
            "GET", "/chats/{chatId}/pin", path_params={"chatId": chat_id}, chat_id=chat_id
        )
        return data.get("message")

    # -- updates -----------------------------------------------------------------------

    def get_subscriptions(self) -> list[JSON]:
        """``GET /subscriptions``: the ``Subscription`` objects (url, time, update_types)."""
        return list(self._request("GET", "/subscriptions").get("subscriptions") or [])

    def subscribe(
        self, url: str, update_types: Iterable[str] | None = None, secret: str | None = None
    ) -> JSON:
        """``POST /subscriptions``: deliver updates to ``url`` with the secret header."""
        body: JSON = {"url": url}
        if update_types is not None:
            body["update_types"] = list(dict.fromkeys(update_types))
        if secret is not None:
            body["secret"] = secret
        return self._request("POST", "/subscriptions", json=body, result=True)

    def unsubscribe(self, url: str) -> JSON:
        """``DELETE /subscriptions?url=..``: ``SimpleQueryResult``."""
        return self._request("DELETE", "/subscriptions", params={"url": url}, result=True)

    def get_updates(
        self,
        *,
        marker: int | None = None,
        limit: int = 100,
        timeout: int = 30,
        types: Iterable[str] | None = None,
    ) -> UpdatesBatch:
        """``GET /updates`` (long polling; only while no webhook is subscribed)."""
        params: dict[str, Any] = {"limit": int(limit), "timeout": int(timeout), "marker": marker}
        if types is not None:
            params["types"] = _csv(dict.fromkeys(types))
        data = self._request(
            "GET", "/updates", params=params, timeout=float(timeout) + self.timeout
        )
        return UpdatesBatch(updates=list(data.get("updates") or []), marker=data.get("marker"))
