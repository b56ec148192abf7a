"""Panels that features contribute to other features' detail pages.

A group page shows its steps (engine), its chat link (max) and its history (audit)
without importing those features' views: each registers a panel here, keyed by the
object type, with a template and a function computing the template's context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

# Modules that register panels when imported (each feature appends its own line).
PANEL_MODULES: list[str] = [
    "migrator.audit.panels",
    "migrator.engine.panels",
    "migrator.max.panels",
    "migrator.directives.panels",
]


@dataclass(frozen=True)
class Panel:
    object_type: str  # "group", "chat", "wave", "employee", "organisation"
    template: str
    context: Callable[[object], dict]
    order: int = 50


_PANELS: list[Panel] = []


def register_panel(object_type: str, template: str, context: Callable[[object], dict],
                   order: int = 50) -> None:
    if not any(p.object_type == object_type and p.template == template for p in _PANELS):
        _PANELS.append(Panel(object_type, template, context, order))


def panels_for(object_type: str, obj) -> list[tuple[str, dict]]:
    """``[(template, context), ...]`` for an object's page, in display order."""
    for module in PANEL_MODULES:
        import_module(module)
    panels = sorted((p for p in _PANELS if p.object_type == object_type), key=lambda p: p.order)
    return [(p.template, p.context(obj)) for p in panels]
