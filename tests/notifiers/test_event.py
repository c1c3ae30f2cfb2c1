"""The event module: what a notifier sees of a transition, and the one did_you_mean."""

from __future__ import annotations

import ast
from pathlib import Path

import notifiers
import workflow

ROOT = Path(__file__).resolve().parents[2]


def test_event_is_defined_in_its_own_module() -> None:
    assert notifiers.Event.__module__ == "notifiers.event"


def test_did_you_mean_is_defined_once_in_the_packages() -> None:
    defined = [path.relative_to(ROOT).as_posix()
               for package in ("workflow", "notifiers", "jobs") for path in sorted((ROOT / package).rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.FunctionDef) and node.name == "did_you_mean"]
    assert defined == ["workflow/errors.py"]


def test_did_you_mean_names_the_closest_word() -> None:
    assert workflow.did_you_mean("acept", ["accept", "reject"]) == " Did you mean 'accept'?"
