"""Server-side SVG charts: no scripts, no external resources, readable by screen readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 14, 34


@dataclass(frozen=True)
class Series:
    label: str
    css: str  # class of the line (colour from progress.css), e.g. "s-linked"
    colour: str  # presentation attribute fallback
    values: list[tuple[date, float]]


def x_of(day: date, start: date, end: date) -> float:
    span = max(1, (end - start).days)
    return round(LEFT + (WIDTH - LEFT - RIGHT) * (day - start).days / span, 1)


def y_of(value: float) -> float:
    value = max(0.0, min(100.0, value))
    return round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / 100.0), 1)


def points(series: Series, start: date, end: date) -> str:
    """The ``points`` attribute of a series' polyline."""
    return " ".join(f"{x_of(d, start, end)},{y_of(v)}" for d, v in series.values)


def line_chart(series: list[Series], *, title: str, desc: str,
               deadline: date | None = None, chart_id: str = "chart") -> Markup:
    """A percentage-over-time chart (0–100 %) with an optional deadline marker."""
    days = [d for s in series for d, _v in s.values]
    if not days:
        return Markup("")  # noqa: S704
    start, end = min(days), max(days)
    if deadline is not None:
        end = max(end, deadline)
    if end == start:
        end = date.fromordinal(start.toordinal() + 1)
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg" '
        f'font-size="11" font-family="sans-serif">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(desc)}</desc>',
    ]
    for pct in (0, 25, 50, 75, 100):
        y = y_of(pct)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" '
                     f'stroke="#d8dde3" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" '
                     f'fill="#5b6470">{pct}%</text>')
    for d in (start, end):
        parts.append(f'<text x="{x_of(d, start, end)}" y="{HEIGHT - 14}" text-anchor="middle" '
                     f'fill="#5b6470">{escape(format_date(d, "dd.MM"))}</text>')
    if deadline is not None:
        x = x_of(deadline, start, end)
        parts.append(f'<line class="deadline" x1="{x}" x2="{x}" y1="{TOP}" '
                     f'y2="{HEIGHT - BOTTOM}" stroke="#b3261e" stroke-width="2" '
                     f'stroke-dasharray="5 4"/>')
        parts.append(f'<text x="{x - 4}" y="{TOP + 10}" text-anchor="end" fill="#b3261e">'
                     f'{escape(_("Deadline"))} {escape(format_date(deadline, "dd.MM"))}</text>')
    for s in series:
        if not s.values:
            continue
        parts.append(f'<polyline class="{s.css}" fill="none" stroke="{s.colour}" '
                     f'stroke-width="2.5" points="{points(s, start, end)}"/>')
        last_d, last_v = s.values[-1]
        parts.append(f'<circle class="{s.css}" cx="{x_of(last_d, start, end)}" '
                     f'cy="{y_of(last_v)}" r="3.5" fill="{s.colour}"/>')
    # Legend along the bottom.
    lx = LEFT
    for s in series:
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 10}" width="14" height="4" '
                     f'fill="{s.colour}"/>')
        parts.append(f'<text x="{lx + 18}" y="{HEIGHT - 5}" fill="#1b1f24">'
                     f'{escape(s.label)}</text>')
        lx += 30 + 7 * len(s.label)
    parts.append("</svg>")
    # Every text part above went through escape(); numbers are formatted floats.
    return Markup("".join(parts))  # noqa: S704


def progress_chart(history: list[dict], deadline: date | None, name: str,
                   chart_id: str = "progress-chart") -> Markup:
    """Share of employees linked to Max and of members in the Max chats, day by day."""
    linked = Series(_("Employees linked to Max"), "s-linked", "#0b57d0",
                    [(h["day"], h["linked_pct"]) for h in history])
    coverage = Series(_("Members in Max chats"), "s-coverage", "#137333",
                      [(h["day"], h["coverage_pct"]) for h in history])
    title = _("Progress over time: %(name)s", name=name)
    if history:
        last = history[-1]
        desc = _("From %(start)s to %(end)s the share of employees linked to Max went from "
                 "%(a)s%% to %(b)s%%; members in Max chats from %(c)s%% to %(d)s%%.",
                 start=format_date(history[0]["day"], "dd.MM.yyyy"),
                 end=format_date(last["day"], "dd.MM.yyyy"),
                 a=history[0]["linked_pct"], b=last["linked_pct"],
                 c=history[0]["coverage_pct"], d=last["coverage_pct"])
        if deadline is not None:
            desc += " " + _("Deadline: %(date)s.", date=format_date(deadline, "dd.MM.yyyy"))
    else:
        desc = ""
    return line_chart([linked, coverage], title=title, desc=desc, deadline=deadline,
                      chart_id=chart_id)
