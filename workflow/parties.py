"""Parties: who is concerned by a row, declared by attribute name or callable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import DefinitionError

#: A party is declared by the name of an attribute of the row, or a callable taking the row.
PartySpec = str | Callable[[Any], Any]


def check_parties(model: str, parties: Mapping[str, PartySpec]) -> dict[str, PartySpec]:
    """Return the party specs after checking their names and kinds.

    Raises:
        DefinitionError: a party name is not an identifier, or a spec is neither a string nor callable.
    """
    checked: dict[str, PartySpec] = {}
    for name, spec in parties.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise DefinitionError(f"{model}: party name {name!r} must be an identifier, like 'borrower'.")
        if not (isinstance(spec, str) or callable(spec)):
            raise DefinitionError(
                f"{model}: party {name!r} must be an attribute name or a callable taking the row, "
                f"not {type(spec).__name__}."
            )
        checked[name] = spec
    return checked


def check_attributes(model_cls: type, parties: Mapping[str, PartySpec]) -> None:
    """Check that every party declared by attribute name exists on the model class.

    Raises:
        DefinitionError: naming the party and the missing attribute.
    """
    for name, spec in parties.items():
        if isinstance(spec, str) and not hasattr(model_cls, spec):
            raise DefinitionError(
                f"{model_cls.__name__}: party {name!r} names attribute {spec!r}, which the model does not "
                f"have (declare it in the class body, e.g. a relationship with back_populates)."
            )


def resolve_party(row: object, spec: PartySpec) -> Any:
    """Return whatever the party spec gives for ``row``: one recipient, a list of them, or ``None``."""
    if isinstance(spec, str):
        return getattr(row, spec)
    return spec(row)
