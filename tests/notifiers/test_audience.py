"""Planning who is told, without a database: registrations x parties x channels x preferences x required."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from notifiers import Intent, Notifier, Recipient, RecipientError, Registration, SkipReason, plan


class Notes(Notifier):
    """A notifier class to name in registrations (it declares nothing itself)."""


ANN = Recipient("ann@example.com", ref="User:1")
BOB = Recipient("bob@example.com", ref="User:2")


def registration(method: str = "accepted", parties: tuple[str, ...] = ("borrower",),
                 channels: tuple[str, ...] = ("email",), required: bool = False) -> Registration:
    return Registration(Notes, method, "Loan", "accept", parties, channels, required)


def opted_out_of(*pairs: tuple[str, str]) -> SkipReason:
    def reason(ref: str, registration: Registration, channel: str) -> str | None:
        return f"Opted out of {channel}." if (ref, channel) in pairs else None

    return reason


def told(intents: list[Intent]) -> list[tuple[str, str, str, str]]:
    return [(i.registration.method, i.party, i.channel, i.target) for i in intents]


def test_each_recipient_of_each_party_is_told_through_each_channel() -> None:
    intents = plan([registration(parties=("borrower", "lender"), channels=("email", "inapp"))],
                   {"borrower": [ANN], "lender": [BOB]})
    assert told(intents) == [
        ("accepted", "borrower", "email", "ann@example.com"), ("accepted", "borrower", "inapp", "ann@example.com"),
        ("accepted", "lender", "email", "bob@example.com"), ("accepted", "lender", "inapp", "bob@example.com"),
    ]


def test_each_registration_of_the_transition_plans_its_own_intents() -> None:
    intents = plan([registration("accepted"), registration("audit", parties=("lender",))],
                   {"borrower": [ANN], "lender": [BOB]})
    assert told(intents) == [("accepted", "borrower", "email", "ann@example.com"),
                             ("audit", "lender", "email", "bob@example.com")]


def test_a_recipient_named_by_two_parties_is_told_once_as_the_first() -> None:
    intents = plan([registration(parties=("borrower", "lender"))], {"borrower": [ANN], "lender": [ANN]})
    assert told(intents) == [("accepted", "borrower", "email", "ann@example.com")]


def test_a_party_resolving_to_nobody_plans_nothing() -> None:
    assert plan([registration()], {"borrower": []}) == []


def test_a_bad_recipient_is_an_intent_that_fails_with_its_party_named() -> None:
    [intent] = plan([registration()], {"borrower": [RecipientError("Recipient None has no email address.")]})
    assert (intent.recipient, intent.target) == (None, "!borrower")
    assert intent.failure == "Party 'borrower': Recipient None has no email address."


def test_a_bad_element_among_several_fails_alone_under_its_position() -> None:
    intents = plan([registration()], {"borrower": [ANN, RecipientError("bad"), BOB]})
    assert [(i.target, i.failure) for i in intents] == [
        ("ann@example.com", None), ("!borrower/1", "Party 'borrower': bad"), ("bob@example.com", None)]


def test_an_opted_out_recipient_is_skipped_on_that_channel_only() -> None:
    intents = plan([registration(channels=("email", "inapp"))], {"borrower": [ANN, BOB]},
                   opted_out_of(("User:1", "email")))
    assert [(i.target, i.channel, i.skip_reason) for i in intents] == [
        ("ann@example.com", "email", "Opted out of email."), ("bob@example.com", "email", None),
        ("ann@example.com", "inapp", None), ("bob@example.com", "inapp", None)]


def test_a_required_registration_is_sent_to_those_who_opted_out() -> None:
    [intent] = plan([registration(required=True)], {"borrower": [ANN]}, opted_out_of(("User:1", "email")))
    assert intent.skip_reason is None


def test_a_recipient_with_only_a_phone_is_told_by_sms_at_that_phone() -> None:
    carl = Recipient(addresses={"phone": "+49 30 1234567"}, ref="User:3")
    [intent] = plan([registration(channels=("sms",))], {"borrower": [carl]}, address_kinds={"sms": "phone"})
    assert (intent.address, intent.target, intent.skip_reason) == ("+49301234567", "+49301234567", None)


def test_a_recipient_without_an_address_for_the_channel_is_skipped_on_it_with_the_reason() -> None:
    intents = plan([registration(channels=("email", "sms"))], {"borrower": [ANN]}, address_kinds={"sms": "phone"})
    assert [(i.channel, i.address, i.target, i.skip_reason) for i in intents] == [
        ("email", "ann@example.com", "ann@example.com", None),
        ("sms", "", "!User:1", "Party 'borrower': ann@example.com has no phone address for channel 'sms'.")]


PEOPLE = [ANN, BOB, Recipient(addresses={"phone": "+4930123"}, ref="User:3"),
          Recipient("dee@example.com", addresses={"phone": "+4930456"}, ref="User:4")]


@settings(max_examples=60, deadline=None)
@given(registrations=st.lists(st.builds(registration, st.sampled_from(["a", "b"]),
                                        st.sets(st.sampled_from(["buyer", "seller"]), min_size=1).map(tuple),
                                        st.sets(st.sampled_from(["email", "sms", "inapp"]), min_size=1).map(tuple),
                                        st.booleans()), max_size=3),
       parties=st.fixed_dictionaries({"buyer": st.lists(st.sampled_from(PEOPLE), max_size=3),
                                      "seller": st.lists(st.sampled_from(PEOPLE), max_size=3)}),
       opted_out=st.sets(st.tuples(st.sampled_from(["User:1", "User:3", "User:4"]), st.sampled_from(["email", "sms"]))))
def test_every_recipient_is_told_once_per_registration_and_channel_at_the_address_of_its_kind(
        registrations: list[Registration], parties: dict[str, list[Recipient]],
        opted_out: set[tuple[str, str]]) -> None:
    kinds = {"sms": "phone"}
    intents = plan(registrations, parties, opted_out_of(*opted_out), kinds)
    expected = {(r.name, channel, person.ref) for r in registrations for party in r.parties
                for person in parties[party] for channel in r.channels}
    assert sorted((i.registration.name, i.channel, i.recipient.ref) for i in intents if i.recipient) == sorted(expected)
    for intent in intents:
        assert intent.recipient is not None
        address = intent.recipient.address_for(kinds.get(intent.channel, "email"))
        if address is None:
            assert (intent.address, intent.skip_reason is not None) == ("", True)
        else:
            assert intent.address == intent.target == address
            opted = (intent.recipient.ref, intent.channel) in opted_out and not intent.registration.required
            assert (intent.skip_reason is not None) == opted
