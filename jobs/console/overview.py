"""The overview page: the backlog by status, the oldest undelivered, sent per minute as a chart, failures by reason, time.

The figures are ``tidings status``'s own (:func:`jobs.status.status`); the chart's series is
:func:`jobs.status.sent_per_minute`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from .. import runtime, status

__all__ = ["HOURS", "chart", "context"]

HOURS = 3  # the chart's span
_WIDTH, _HEIGHT = 720, 160


def context(session: Session) -> dict[str, Any]:
    """What the overview template shows."""
    figures = status.status(session, grace_seconds=runtime.current().settings.sweep_after_seconds,
                            estimate_final=True)
    series = status.sent_per_minute(session, minutes=HOURS * 60)
    return {"figures": figures, "chart": chart(series), "hours": HOURS,
            "sent_in_span": sum(count for _, count in series)}


def chart(series: list[tuple[dt.datetime, int]]) -> dict[str, Any]:
    """The bars of an inline SVG bar chart of ``series``: one bar a minute, the tallest full height."""
    peak = max((count for _, count in series), default=0)
    step = _WIDTH / max(len(series), 1)
    bars = []
    for i, (at, count) in enumerate(series):
        height = round(_HEIGHT * count / peak, 1) if peak else 0.0
        bars.append({"x": round(i * step, 1), "y": round(_HEIGHT - height, 1), "width": max(round(step - 0.5, 1), 0.5),
                     "height": height, "label": f"{at:%H:%M} UTC: {count} sent"})
    ticks = [{"x": round(i * step, 1), "label": f"{at:%H:%M}"} for i, (at, _) in enumerate(series) if at.minute == 0]
    return {"width": _WIDTH, "height": _HEIGHT, "bars": bars, "peak": peak, "ticks": ticks}
