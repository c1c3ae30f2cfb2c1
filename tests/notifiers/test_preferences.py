"""Preferences: opt-outs by notifier and channel, the most specific choice winning, required mail."""

from __future__ import annotations

import pytest
from notifiers import Recipient, RegistrationError, opt_in, opt_out, preferences_of, registry, skip_reasons
from sqlalchemy.orm import Session

from tests.app import AccountNotifier, Person

UNLOCKED = registry.for_transition("Account", "unlock")[0]
LOCKED = registry.for_transition("Account", "lock")[0]


@pytest.fixture
def ann(session: Session) -> Person:
    ann = Person(name="Ann", email="ann@example.com")
    session.add(ann)
    session.commit()
    return ann


def reason(session: Session, person: Person, channel: str, registration: object = UNLOCKED) -> str | None:
    ref = f"Person:{person.id}"
    return skip_reasons(session, [ref])(ref, registration, channel)  # type: ignore[arg-type]


def test_without_preferences_everything_is_sent(session: Session, ann: Person) -> None:
    assert reason(session, ann, "email") is None


def test_opting_out_of_a_channel_skips_it_for_every_notifier(session: Session, ann: Person) -> None:
    opt_out(session, ann, channel="email")
    session.commit()
    assert (reason(session, ann, "email"), reason(session, ann, "inapp")) == ("Opted out of email.", None)


def test_opting_out_of_a_notifier_class_skips_its_methods_on_every_channel(session: Session, ann: Person) -> None:
    opt_out(session, ann, notifier=AccountNotifier)
    session.commit()
    assert reason(session, ann, "inapp") == "Opted out of AccountNotifier."


def test_a_method_opt_in_overrides_a_channel_opt_out(session: Session, ann: Person) -> None:
    opt_out(session, ann, channel="email")
    opt_in(session, ann, notifier=AccountNotifier.unlocked)
    session.commit()
    assert reason(session, ann, "email") is None


def test_a_channel_choice_is_more_specific_than_the_same_notifier_alone(session: Session, ann: Person) -> None:
    opt_out(session, ann, notifier=AccountNotifier)
    opt_in(session, ann, notifier=AccountNotifier, channel="inapp")
    session.commit()
    assert (reason(session, ann, "email"), reason(session, ann, "inapp")) == ("Opted out of AccountNotifier.", None)


def test_a_required_notifier_ignores_opt_outs(session: Session, ann: Person) -> None:
    opt_out(session, ann)
    session.commit()
    assert reason(session, ann, "email", LOCKED) is None
    assert reason(session, ann, "email") == "Opted out of all notifications."


def test_choosing_again_updates_the_same_preference(session: Session, ann: Person) -> None:
    opt_out(session, ann, channel="email")
    opt_in(session, ann, channel="email")
    session.commit()
    assert [(p.channel, p.enabled) for p in preferences_of(session, ann)] == [("email", True)]


def test_a_recipient_given_by_address_is_matched_in_any_case(session: Session) -> None:
    opt_out(session, "Cy@Example.com", channel="email")
    session.commit()
    ref = Recipient("cy@example.com").ref
    assert skip_reasons(session, [ref])(ref, UNLOCKED, "email") == "Opted out of email."


def test_an_unknown_notifier_name_is_refused_with_a_suggestion(session: Session, ann: Person) -> None:
    with pytest.raises(RegistrationError, match=r"No notifier 'tests.app.AccountNotifier.unlocke' .*"
                                                r"Did you mean 'tests.app.AccountNotifier.unlocked'\?"):
        opt_out(session, ann, notifier="tests.app.AccountNotifier.unlocke")


def test_a_bad_channel_name_is_refused(session: Session, ann: Person) -> None:
    with pytest.raises(RegistrationError, match="Channel 'e-mail' is not a channel name"):
        opt_out(session, ann, channel="e-mail")
