"""Alembic keeps one linear history: one head, every revision reachable from it."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from migrator.db import alembic_config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def test_exactly_one_head():
    heads = _script().get_heads()
    assert len(heads) == 1, f"Alembic has several heads: {sorted(heads)}; chain the new migration"


def test_history_is_linear():
    script = _script()
    revisions = list(script.walk_revisions())
    assert all(not isinstance(r.down_revision, tuple) for r in revisions), "no merge points"
    assert sum(1 for r in revisions if r.down_revision is None) == 1
    assert len(revisions) == len(list(script.iterate_revisions("head", "base")))
