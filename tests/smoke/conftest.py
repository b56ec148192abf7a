"""The production smoke test runs as its own step (``make smoke``, ``MIGRATOR_SMOKE=1``):
it starts gunicorn, the scheduler, a worker, nginx and the sandbox as separate processes on
one PostgreSQL database, so the two suite passes leave it out."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MIGRATOR_SMOKE") == "1":
        return
    smoke = [i for i in items if HERE in Path(str(i.path)).parents]
    if smoke:
        config.hook.pytest_deselected(items=smoke)
        items[:] = [i for i in items if i not in smoke]
