"""Process-level Prometheus instruments (counters and histograms) other features feed.

This module imports nothing of the app, so the Max client and the webhook can record into
it without depending on the rest of ``migrator.ops``. With ``PROMETHEUS_MULTIPROC_DIR`` set
(see docs/operations.md) every process (gunicorn workers, the scheduler, ``run-due``
workers) writes its values there and ``/metrics`` adds them up.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# The instruments of this process; /metrics reads them (or the multiprocess files).
PROCESS = CollectorRegistry(auto_describe=True)

MAX_REQUESTS = Counter(
    "migrator_max_requests", "Max Bot API requests by HTTP method and answer status "
    "(status 'none': no answer came back)", ["method", "status"], registry=PROCESS)
MAX_RATE_LIMITED = Counter(
    "migrator_max_rate_limited", "Max Bot API answers 429 Too Many Requests", registry=PROCESS)
LIMITER_WAIT = Histogram(
    "migrator_max_limiter_wait_seconds", "Time a Max request waited for the rate limiter",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=PROCESS)
WEBHOOK_UPDATES = Counter(
    "migrator_webhook_updates", "Updates received on the Max webhook by update type",
    ["update_type"], registry=PROCESS)


def max_call(method: str, status: int | None) -> None:
    """Count one Max API attempt (called by the Max client's ``on_call`` hook)."""
    MAX_REQUESTS.labels(method=method.upper(), status=str(status) if status else "none").inc()
    if status == 429:
        MAX_RATE_LIMITED.inc()


def limiter_waited(seconds: float) -> None:
    LIMITER_WAIT.observe(max(seconds, 0.0))


def webhook_update(update_type: str) -> None:
    WEBHOOK_UPDATES.labels(update_type=update_type[:64]).inc()
