"""What a step executor tells the runner (an outcome, a postponement, a permanent failure),
the engine's settings, and the lease renewal of a long step.

Executors (:mod:`migrator.engine.kinds`) and the runner (:mod:`migrator.engine.runner`) both
use these; the runner imports the executors, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app


def cfg(name: str):
    """An engine setting from the app's config (declared in :mod:`migrator.config`)."""
    return current_app.config[name]


class Postpone(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """The step cannot run yet (precondition); try again later without counting an attempt."""

    def __init__(self, reason: str, seconds: float = 300, attention: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds
        self.attention = attention


class StepFailed(Exception):
    """A permanent failure: no retry makes sense (e.g. the announcement footer is missing)."""


@dataclass
class Outcome:
    """What an executor decided: the next status and, for a re-run, when."""

    status: str  # succeeded | waiting | due (re-run later, e.g. delta sync)
    again_in: float | None = None
    info: dict = field(default_factory=dict)


