"""Each package lists exactly its public names in ``__all__``."""

from __future__ import annotations

import importlib
import types

import pytest


@pytest.mark.parametrize("name", ["workflow", "notifiers", "notifiers.channels", "jobs"])
def test_all_lists_every_public_name_and_only_those(name: str) -> None:
    module = importlib.import_module(name)
    root = name.split(".")[0]
    own = {n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)
           and str(getattr(v, "__module__", "")).startswith(root)}
    assert own <= set(module.__all__) <= set(vars(module))
    assert module.__all__ == sorted(module.__all__)
