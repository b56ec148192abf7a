"""A milestone's chart: its trajectory (plan) against the actual curve, server-side SVG."""

from __future__ import annotations

from datetime import date

from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import Markup

from migrator.directives.models import Directive, Milestone
from migrator.directives.service import METRIC_LABELS
from migrator.progress.charts import Series, line_chart


def milestone_chart(directive: Directive, milestone: Milestone,
                    actual: list[tuple[date, float]], name: str, chart_id: str) -> Markup:
    plan = Series(_("Plan"), "s-plan", "#b3261e",
                  [(directive.issued_at, 0.0), (milestone.due, milestone.target_percent)])
    fact = Series(_("Fact"), "s-linked", "#0b57d0", actual)
    label = str(METRIC_LABELS[milestone.metric])
    title = _("%(metric)s: %(target)s%% by %(due)s — %(name)s", metric=label,
              target=f"{milestone.target_percent:g}",
              due=format_date(milestone.due, "dd.MM.yyyy"), name=name)
    last = actual[-1][1] if actual else 0.0
    desc = _("The plan rises in a straight line from 0%% on %(start)s to %(target)s%% on "
             "%(due)s; the fact is %(fact)s%% now.",
             start=format_date(directive.issued_at, "dd.MM.yyyy"),
             target=f"{milestone.target_percent:g}",
             due=format_date(milestone.due, "dd.MM.yyyy"), fact=f"{last:g}")
    return line_chart([plan, fact], title=title, desc=desc, deadline=milestone.due,
                      chart_id=chart_id)
