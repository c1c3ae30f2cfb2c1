"""The workflow graph as an inline SVG diagram: what ``tidings graph`` prints, drawn.

States stand in a row, in their declared order; a transition to a later state arcs above the
row, one to an earlier state (or the same) below it, each labelled with its trigger. The arrows
come from :func:`jobs.commands.graph.edges`, which the text and Mermaid output use too.
"""

from __future__ import annotations

from typing import Any

from workflow import stateful_models

from ..commands.graph import Edge, edges, reminders

__all__ = ["context", "layout"]

_GAP, _BOX_W, _BOX_H, _MARGIN = 170, 120, 36, 20


def context() -> dict[str, Any]:
    """Every imported Stateful model's diagram, its arrows as a table, and its reminders."""
    return {"models": [{"name": name, "initial": model.workflow.initial, "edges": found,
                        "reminders": reminders(name, model), "svg": layout(list(model.workflow.states), found)}
                       for name, model in sorted(stateful_models().items())
                       for found in [edges(name, model)]]}


def layout(states: list[str], arrows: list[Edge]) -> dict[str, Any]:
    """Boxes and arcs of one diagram, in SVG coordinates."""
    index = {state: i for i, state in enumerate(states)}
    above = [a for a in arrows if index[a.dest] > index[a.source]]
    below = [a for a in arrows if index[a.dest] <= index[a.source]]
    rise = 30 + 22 * len(above)
    row_y = _MARGIN + rise
    centres = [_MARGIN + i * _GAP + _BOX_W / 2 for i in range(len(states))]
    boxes = [{"x": _MARGIN + i * _GAP, "y": row_y, "w": _BOX_W, "h": _BOX_H, "label": state,
              "cx": _MARGIN + i * _GAP + _BOX_W / 2} for i, state in enumerate(states)]
    paths = []
    for n, arrow in enumerate(above):
        paths.append(_arc(centres[index[arrow.source]], centres[index[arrow.dest]], row_y,
                          -(24 + 22 * n), arrow))
    for n, arrow in enumerate(below):
        paths.append(_arc(centres[index[arrow.source]] + 8, centres[index[arrow.dest]] - 8, row_y + _BOX_H,
                          24 + 22 * n, arrow))
    height = row_y + _BOX_H + 30 + 22 * len(below) + _MARGIN
    return {"width": 2 * _MARGIN + max(len(states) - 1, 0) * _GAP + _BOX_W, "height": height, "boxes": boxes,
            "paths": paths}


def _arc(x1: float, x2: float, y: float, lift: float, arrow: Edge) -> dict[str, Any]:
    """A cubic curve from ``x1`` to ``x2`` on the line ``y``, ``lift`` above (negative) or below it, with its label."""
    if x1 == x2:  # a transition to the same state: a loop
        x1, x2 = x1 - 14, x1 + 14
    d = f"M {x1:.0f} {y:.0f} C {x1:.0f} {y + lift:.0f}, {x2:.0f} {y + lift:.0f}, {x2:.0f} {y:.0f}"
    told = f" / {arrow.told}" if arrow.told else ""
    return {"d": d, "label": f"{arrow.trigger}{arrow.after}", "title": f"{arrow.trigger}{arrow.after}{told}",
            "lx": (x1 + x2) / 2, "ly": y + lift * 0.75 + (4 if lift > 0 else -2)}
