"""Hypothesis over the webhook intake: whatever JSON arrives with the right secret, the answer
is a documented one (200 stored, 400 not an Update object), never a 5xx; and nothing is
written for a 400."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from migrator.audit.models import AuditEvent
from migrator.max.models import MaxUpdate

SECRET = "test-webhook-secret"
FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

numbers = st.one_of(st.integers(min_value=-2**80, max_value=2**80),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none())
scalars = st.one_of(numbers, st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
update_types = st.sampled_from(["bot_added", "bot_removed", "bot_started", "user_added",
                                "user_removed", "chat_title_changed", "message_created", "x"])
updates = st.fixed_dictionaries(
    {"update_type": update_types},
    optional={"timestamp": numbers, "chat_id": numbers, "user": values, "payload": values,
              "message": values, "title": scalars, "is_channel": values})


def _counts(ctx):
    ctx.rollback()
    return (ctx.scalar(select(func.count()).select_from(MaxUpdate)),
            ctx.scalar(select(func.count()).select_from(AuditEvent)))


@FUZZ
@given(body=st.one_of(updates, values))
def test_webhook_answers_only_documented_statuses(client, ctx, body):
    before = _counts(ctx)
    resp = client.post("/max/webhook", data=json.dumps(body), content_type="application/json",
                       headers={"X-Max-Bot-Api-Secret": SECRET})
    assert resp.status_code in (200, 400), resp.get_data(as_text=True)[:300]
    if resp.status_code == 400:
        assert _counts(ctx) == before  # nothing written on an error


@FUZZ
@given(raw=st.binary(max_size=300))
def test_webhook_survives_arbitrary_bytes(client, ctx, raw):
    before = _counts(ctx)
    resp = client.post("/max/webhook", data=raw, content_type="application/json",
                       headers={"X-Max-Bot-Api-Secret": SECRET})
    assert resp.status_code in (200, 400)
    if resp.status_code == 400:
        assert _counts(ctx) == before
