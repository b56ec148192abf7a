"""``/metrics``: Prometheus text built from the database (what every process sees) and the
process instruments of :mod:`migrator.ops.instruments` (or, with
``PROMETHEUS_MULTIPROC_DIR``, those of every process of the installation)."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from migrator.config import environment
from migrator.db import get_session, utcnow
from migrator.engine.models import Heartbeat, Step
from migrator.groups.models import GroupMember
from migrator.mail.models import OutboxMessage
from migrator.ops import instruments
from migrator.ops.checks import oldest_unsent
from migrator.people.invite_models import BotMessage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_DUE_BEATS = ("scheduler", "run-due")  # heartbeats written after a successful run-due


class DatabaseCollector:
    """Figures read from the database at scrape time (one query per family)."""

    def collect(self):
        session = get_session()
        steps = GaugeMetricFamily("migrator_steps", "Migration steps by kind and status",
                                  labels=["kind", "status"])
        for kind, status, n in session.execute(
                sa.select(Step.kind, Step.status, sa.func.count()).group_by(Step.kind,
                                                                            Step.status)):
            steps.add_metric([kind, status], n)
        yield steps

        members = GaugeMetricFamily("migrator_members",
                                    "Source group members by their state in the Max chat",
                                    labels=["state"])
        for state, n in session.execute(sa.select(GroupMember.state, sa.func.count())
                                        .group_by(GroupMember.state)):
            members.add_metric([state], n)
        yield members

        outbox = GaugeMetricFamily("migrator_outbox_messages",
                                   "Outbox messages (e-mail, bot replies) by kind and status",
                                   labels=["kind", "status"])
        for kind, status, n in session.execute(
                sa.select(OutboxMessage.kind, OutboxMessage.status, sa.func.count())
                .group_by(OutboxMessage.kind, OutboxMessage.status)):
            outbox.add_metric([kind, status], n)
        for status, n in session.execute(sa.select(BotMessage.status, sa.func.count())
                                         .group_by(BotMessage.status)):
            outbox.add_metric(["bot_reply", status], n)
        yield outbox

        yield GaugeMetricFamily("migrator_outbox_oldest_age_seconds",
                                "Age of the oldest unsent outbox message (0: none waits)",
                                value=oldest_unsent(utcnow()) or 0.0)

        beats = dict(session.execute(sa.select(Heartbeat.name, Heartbeat.seen_at)
                                     .where(Heartbeat.name.in_(RUN_DUE_BEATS))).all())
        hb = beats.get("scheduler")
        yield GaugeMetricFamily("migrator_scheduler_heartbeat_timestamp_seconds",
                                "Unix time of the scheduler's last heartbeat (0: never)",
                                value=hb.timestamp() if hb else 0.0)
        last = max(beats.values(), default=None)
        yield GaugeMetricFamily("migrator_run_due_last_success_timestamp_seconds",
                                "Unix time of the last successful run-due (0: never)",
                                value=last.timestamp() if last else 0.0)
        session.commit()  # end the read transaction


class _ProcessCollector:
    def collect(self):
        yield from instruments.PROCESS.collect()


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    if environment().get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessCollector())
    return generate_latest(registry)
