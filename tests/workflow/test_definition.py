from __future__ import annotations

import datetime as dt

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


def test_a_timeout_is_exposed_per_state_and_not_passed_to_the_state_machine() -> None:
    week = dt.timedelta(days=7)
    model = declare("Timed", states=["draft", "requested", "expired", "done"], initial="draft",
                    transitions=[["request", "draft", "requested"],
                                 {"trigger": "expire", "source": ["requested", "done"], "dest": "expired",
                                  "timeout": week, "after": lambda: None}])
    assert model.workflow.timeouts == {"requested": (("expire", week),), "done": (("expire", week),)}
    assert all("timeout" not in t for t in model.workflow.transitions)


@pytest.mark.parametrize("name, timeout", [("ZeroTimeout", 0), ("TextTimeout", "7 days"), ("NoTimeout", None),
                                           ("NegativeTimeout", -1)])
def test_a_timeout_that_is_no_positive_timedelta_is_refused(name: str, timeout: object) -> None:
    value = dt.timedelta(seconds=timeout) if isinstance(timeout, int) else timeout
    with pytest.raises(DefinitionError, match=rf"{name}: the timeout of 'expire' must be a positive "
                                              r"datetime.timedelta"):
        declare(name, states=["a", "b", "c"], initial="a",
                transitions=[["go", "a", "b"], {"trigger": "expire", "source": "b", "dest": "c", "timeout": value}])


def test_a_timeout_from_any_state_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"AnyTimeout: the timeout of 'expire' needs its source states named"):
        declare("AnyTimeout", states=["a", "b"], initial="a",
                transitions=[{"trigger": "expire", "source": "*", "dest": "b", "timeout": dt.timedelta(days=1)}])


def test_a_timeout_from_the_initial_state_is_refused_saying_there_is_nothing_to_time_it_from() -> None:
    with pytest.raises(DefinitionError, match=r"InitialTimeout: the timeout of 'expire' starts from 'a', the "
                                              r"initial state: rows are created in it without any transition"):
        declare("InitialTimeout", states=["a", "b"], initial="a",
                transitions=[{"trigger": "expire", "source": ["a"], "dest": "b", "timeout": dt.timedelta(days=1)}])


def test_a_timeout_that_stays_in_its_state_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"LoopTimeout: the timeout of 'nudge' would leave the row in 'b'"):
        declare("LoopTimeout", states=["a", "b"], initial="a",
                transitions=[["go", "a", "b"],
                             {"trigger": "nudge", "source": "b", "dest": "=", "timeout": dt.timedelta(days=1)}])


def test_a_timeout_declared_twice_for_one_state_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"TwiceTimeout: the timeout of 'expire' is declared twice from state 'b'"):
        declare("TwiceTimeout", states=["a", "b", "c"], initial="a",
                transitions=[["go", "a", "b"],
                             {"trigger": "expire", "source": "b", "dest": "c", "timeout": dt.timedelta(days=1)},
                             {"trigger": "expire", "source": ["b"], "dest": "a", "timeout": dt.timedelta(days=2)}])
