"""Webhook delivery for the Max sandbox: one background thread POSTs updates to subscribers.

Like Max, each update is POSTed as JSON with ``X-Max-Bot-Api-Secret: <secret>`` (when the
subscription has a secret); any answer but 200 (or no answer within 30 s) is retried with
exponential backoff. The real platform keeps retrying for 8 hours; the sandbox gives up
after ``SandboxState.webhook_give_up_after`` seconds (5 minutes by default) and uses short
intervals so local runs stay quick. Like Max, a subscription whose deliveries have all
failed for ``SandboxState.webhook_unsubscribe_after`` seconds (8 hours; the control surface
compresses it) is removed. The ``duplicate_delivery`` fault delivers an update a
second time after it succeeded; ``reorder_delivery`` holds an update back for ``hold_ms`` so
the updates emitted after it overtake it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from migrator.sandbox.state import SandboxState, Subscription

log = logging.getLogger("migrator.sandbox")

SECRET_HEADER = "X-Max-Bot-Api-Secret"  # noqa: S105 - a header name


@dataclass(order=True)
class _Job:
    due: float
    order: int
    url: str = field(compare=False)
    secret: str | None = field(compare=False)
    update: dict[str, Any] = field(compare=False)
    first_at: float = field(compare=False)
    attempt: int = field(compare=False, default=1)
    duplicate: bool = field(compare=False, default=False)


class WebhookDeliverer:
    """Delivers queued updates from a daemon thread, started on first use."""

    def __init__(self, state: SandboxState, *, timeout: float = 30.0) -> None:
        self.state = state
        self.timeout = timeout
        self._jobs: list[_Job] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._inflight = 0

    def enqueue(self, sub: Subscription, update: dict[str, Any]) -> None:
        now = time.monotonic()
        due = now
        if self.state.fire("reorder_delivery"):
            due += self.state.reorder_hold_ms / 1000.0
        self._push(_Job(due, next(self._order), sub.url, sub.secret, update, first_at=now))

    def _push(self, job: _Job) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._stop = False
                self._thread = threading.Thread(
                    target=self._run, name="max-sandbox-webhooks", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._jobs, job)
            self._cond.notify_all()

    def pending(self) -> int:
        """Deliveries queued or in flight."""
        with self._cond:
            return len(self._jobs) + self._inflight

    def clear(self) -> None:
        with self._cond:
            self._jobs.clear()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._jobs.clear()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as http:
            while True:
                with self._cond:
                    while not self._stop and (
                        not self._jobs or self._jobs[0].due > time.monotonic()
                    ):
                        wait = self._jobs[0].due - time.monotonic() if self._jobs else None
                        self._cond.wait(wait)
                    if self._stop:
                        return
                    job = heapq.heappop(self._jobs)
                    self._inflight += 1
                try:
                    self._deliver(http, job)
                finally:
                    with self._cond:
                        self._inflight -= 1

    def _deliver(self, http: httpx.Client, job: _Job) -> None:
        with self.state.lock:
            subscribed = job.url in self.state.subscriptions
        if not subscribed:
            self._log(job, None, "unsubscribed")
            return
        headers = {"Content-Type": "application/json"}
        if job.secret:
            headers[SECRET_HEADER] = job.secret
        status: int | None = None
        error: str | None = None
        try:
            response = http.post(job.url, json=job.update, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        self._log(job, status, error)
        now = time.monotonic()
        st = self.state
        with st.lock:
            sub = st.subscriptions.get(job.url)
            if sub is not None and status == 200:
                sub.failing_since = None
            elif sub is not None:
                if sub.failing_since is None:
                    sub.failing_since = now
                if now - sub.failing_since >= st.webhook_unsubscribe_after:
                    # Max: no successful answer for 8 hours, the bot is unsubscribed
                    del st.subscriptions[job.url]
                    log.warning("unsubscribing %s after failed deliveries", job.url)
                    self._log(job, status, "unsubscribed after failures")
                    return
        if status == 200:
            if not job.duplicate and self.state.fire("duplicate_delivery"):
                self._push(
                    _Job(now, next(self._order), job.url, job.secret, job.update, now, 1, True)
                )
            return
        delay = min(
            st.webhook_retry_cap,
            st.webhook_retry_base * st.webhook_retry_factor ** (job.attempt - 1),
        )
        if now + delay - job.first_at > st.webhook_give_up_after:
            log.warning("giving up delivering %s to %s", job.update["update_type"], job.url)
            self._log(job, status, "gave up")
            return
        job.attempt += 1
        job.due = now + delay
        job.order = next(self._order)
        self._push(job)

    def _log(self, job: _Job, status: int | None, error: str | None) -> None:
        with self.state.lock:
            self.state.delivery_log.append(
                {
                    "at": time.time(),
                    "url": job.url,
                    "update_type": job.update["update_type"],
                    "update_timestamp": job.update["timestamp"],
                    "attempt": job.attempt,
                    "duplicate": job.duplicate,
                    "status": status,
                    "error": error,
                }
            )
