"""Bad input to a trigger gets its clear error and changes nothing: state, log and deliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jobs import Delivery
from jobs.testing import Kit
from sqlalchemy.orm import Session
from workflow import ConditionFailed, ContextNotSerializable, TransitionNotAllowed, TransitionRecord, UnknownTrigger

from tests.app import Order

BAD_INPUT = [
    ("unknown trigger", lambda order: order.fire("refund"), UnknownTrigger),
    ("not allowed from the current state", lambda order: order.ship(), TransitionNotAllowed),
    ("failed condition", lambda order: (setattr(order, "paid_in_full", False), order.pay()), ConditionFailed),
    ("context that is not JSON", lambda order: order.pay(at={1, 2}), ContextNotSerializable),
]


@pytest.mark.parametrize(("case", "fire", "error"), BAD_INPUT, ids=[case for case, _, _ in BAD_INPUT])
def test_bad_input_changes_nothing(case: str, fire: Callable[[Order], Any], error: type[Exception],
                                   tidings: Kit, session: Session, order: Order,
                                   count: Callable[[type], int]) -> None:
    with pytest.raises(error):
        fire(order)
    assert order.state == "new"
    session.commit()
    tidings.assert_nothing_sent()
    assert (count(TransitionRecord), count(Delivery)) == (0, 0)
    session.refresh(order)
    assert order.state == "new"
