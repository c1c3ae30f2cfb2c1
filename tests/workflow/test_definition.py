from __future__ import annotations

import pytest
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workflow import DefinitionError, Stateful, Workflow


class Base(DeclarativeBase):
    pass


def declare(name: str, **workflow: object) -> type:
    body = {"__tablename__": name.lower(), "id": mapped_column(primary_key=True),
            "__annotations__": {"id": Mapped[int]}, "workflow": Workflow(**workflow)}  # type: ignore[arg-type]
    return type(name, (Stateful, Base), body)


def test_unknown_initial_state_names_the_states_and_suggests_one() -> None:
    with pytest.raises(DefinitionError, match=r"BadInitial: initial state 'requsted' .*Did you mean 'requested'"):
        declare("BadInitial", states=["requested", "done"], initial="requsted")


def test_transition_to_an_unknown_state_is_refused_at_class_creation() -> None:
    with pytest.raises(DefinitionError, match=r"BadDest: transition 'finish' goes to unknown state 'dne'"):
        declare("BadDest", states=["a", "done"], initial="a", transitions=[["finish", "a", "dne"]])


def test_transition_from_an_unknown_state_in_a_source_list_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"starts from unknown state 'b'"):
        declare("BadSource", states=["a", "c"], initial="a", transitions=[["go", ["a", "b"], "c"]])


def test_condition_the_model_does_not_define_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"names conditions 'is_ready', which BadCondition does not define"):
        declare("BadCondition", states=["a", "b"], initial="a",
                transitions=[{"trigger": "go", "source": "a", "dest": "b", "conditions": "is_ready"}])


def test_unknown_keys_in_a_transition_dict_are_refused() -> None:
    with pytest.raises(DefinitionError, match=r"unknown keys \['condition'\]"):
        Workflow(states=["a"], initial="a", transitions=[{"trigger": "go", "source": "a", "dest": "a",
                                                          "condition": "x"}])


def test_party_naming_a_missing_attribute_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"BadParty: party 'owner' names attribute 'owner'"):
        declare("BadParty", states=["a"], initial="a", parties={"owner": "owner"})


def test_party_spec_must_be_a_name_or_a_callable() -> None:
    with pytest.raises(DefinitionError, match=r"party 'owner' must be an attribute name or a callable"):
        declare("BadPartySpec", states=["a"], initial="a", parties={"owner": 42})


def test_trigger_clashing_with_a_model_attribute_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"trigger 'fire' clashes"):
        declare("Clash", states=["a", "b"], initial="a", transitions=[["fire", "a", "b"]])


def test_two_models_with_the_same_name_are_refused() -> None:
    declare("Twin", states=["a"], initial="a")

    class Other(DeclarativeBase):
        pass

    with pytest.raises(DefinitionError, match=r"Two Stateful models are named 'Twin'"):
        type("Twin", (Stateful, Other), {"__module__": "elsewhere", "__tablename__": "twin2", "id": mapped_column(primary_key=True),
                                         "__annotations__": {"id": Mapped[int]},
                                         "workflow": Workflow(states=["a"], initial="a")})
