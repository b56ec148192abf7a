"""Exceptions raised by the Max Bot API client.

Max answers errors with ``{"code": "...", "message": "..."}`` and an HTTP status; each status
the client has to react to differently gets its own subclass. No exception ever carries the
bot token: every text that reaches an exception goes through :func:`redact` first.
"""

from __future__ import annotations

REDACTED = "***"
_DEFAULT = object()  # "use the class's default status"


def redact(text: str, token: str | None) -> str:
    """``text`` with every occurrence of ``token`` replaced by ``***``."""
    if token and text:
        return text.replace(token, REDACTED)
    return text


class MaxError(Exception):
    """A failed Max Bot API call.

    ``status`` is the HTTP status (``None`` when no answer came back), ``code`` and
    ``message`` come from the error body, ``method``/``path`` name the call (a path template
    such as ``/chats/{chatId}/members``), ``retry_after`` is the server's hint in seconds.
    """

    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None | object = _DEFAULT,
        code: str = "",
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status: int | None = self.default_status if status is _DEFAULT else status  # type: ignore[assignment]
        self.code = code
        self.message = message
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (rate limit, outage, timeout)."""
        return False

    def __str__(self) -> str:
        where = f" [{self.method} {self.path}]" if self.method else ""
        code = f" {self.code}" if self.code else ""
        status = self.status if self.status is not None else "no response"
        return f"Max API error {status}{code}: {self.message}{where}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, method={self.method!r}, path={self.path!r})"
        )


class MaxBadRequest(MaxError):
    """400: the request is malformed (e.g. more than 100 ids, text over 4000 characters)."""

    default_status = 400


class MaxAuthError(MaxError):
    """401: the token is missing, wrong or revoked."""

    default_status = 401


class MaxForbidden(MaxError):
    """403: the bot lacks the right (not an admin, missing permission, user blocked it)."""

    default_status = 403


class MaxNotFound(MaxError):
    """404: unknown chat, user or message."""

    default_status = 404


class MaxRateLimited(MaxError):
    """429: more requests than the platform allows (30 per second per token)."""

    default_status = 429

    @property
    def retryable(self) -> bool:
        return True


class MaxUnavailable(MaxError):
    """503 or any 5xx, a timeout or a connection error: the platform could not answer."""

    default_status = 503

    @property
    def retryable(self) -> bool:
        return True


class MaxSoftFailure(MaxError):
    """A 200 answer whose result body says ``success: false`` (``SimpleQueryResult``,
    ``ModifyMembersResult``): Max did not do it. Carries Max's ``message``; retryable, so
    an add or a pin that soft-failed is tried again, never taken as done."""

    default_status = 200

    @property
    def retryable(self) -> bool:
        return True


_BY_STATUS: dict[int, type[MaxError]] = {
    400: MaxBadRequest,
    401: MaxAuthError,
    403: MaxForbidden,
    404: MaxNotFound,
    429: MaxRateLimited,
}


def error_class_for_status(status: int) -> type[MaxError]:
    """The exception class that represents an HTTP error ``status``."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return MaxUnavailable
    return MaxError
