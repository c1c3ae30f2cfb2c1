"""``python -m jobs``: the operator commands."""

from __future__ import annotations

from .commands.cli import main_exit

main_exit()
