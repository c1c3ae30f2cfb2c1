from __future__ import annotations

from types import SimpleNamespace

import pytest
from notifiers import Recipient, RecipientError, recipients_of


def test_objects_strings_and_lists_become_recipients() -> None:
    people = [SimpleNamespace(email="ann@example.com", name="Ann"), "Bob <bob@example.com>", "cy@example.com"]
    assert recipients_of(people, "watchers") == [Recipient("ann@example.com", "Ann", "watchers"),
                                                Recipient("bob@example.com", "Bob", "watchers"),
                                                Recipient("cy@example.com", None, "watchers")]


def test_none_is_nobody() -> None:
    assert recipients_of(None) == []


@pytest.mark.parametrize("value", ["ann@example.com\r\nBcc: all@example.com", "Ann\n <ann@example.com>"])
def test_cr_or_lf_in_an_address_is_refused(value: str) -> None:
    with pytest.raises(RecipientError, match="CR or LF"):
        recipients_of(value)


def test_an_object_without_an_address_is_refused() -> None:
    with pytest.raises(RecipientError, match="has no email address"):
        recipients_of(SimpleNamespace(email=None, name="Ann"))


def test_something_that_is_no_recipient_is_refused_naming_the_party() -> None:
    with pytest.raises(RecipientError, match=r"Party 'buyer' gave 42, which is not a recipient"):
        recipients_of(42, "buyer")


def test_an_address_without_at_sign_is_refused() -> None:
    with pytest.raises(RecipientError, match="'not-an-address' is malformed"):
        Recipient("not-an-address")


def test_a_recipient_given_by_address_is_known_by_its_address() -> None:
    assert Recipient("Ann@Example.com").ref == "ann@example.com"


def test_a_recipient_object_brings_its_locale() -> None:
    [ann] = recipients_of(SimpleNamespace(email="ann@example.com", name="Ann", locale="de"))
    assert ann.locale == "de"


def test_a_non_ascii_domain_and_local_part_are_accepted() -> None:
    assert Recipient("zoë@bücher.example").address == "zoë@bücher.example"


@pytest.mark.parametrize(("address", "refusal"), [
    ("x@-bücher.example", "not a valid internationalized domain name"),
    ("ann\x07@example.com", "control or unprintable characters"),
    ("ann@example.com (Ann)", "malformed"),
])
def test_an_address_that_cannot_travel_is_refused_with_the_reason(address: str, refusal: str) -> None:
    with pytest.raises(RecipientError, match=refusal):
        Recipient(address)


def test_an_address_string_naming_two_addresses_is_refused() -> None:
    with pytest.raises(RecipientError, match="which is not one address"):
        recipients_of("ann@example.com, bob@example.com", "buyer")


def test_an_address_string_with_a_quoted_name_keeps_the_whole_name() -> None:
    assert recipients_of('"Doe, Ann" <ann@example.com>') == [Recipient("ann@example.com", "Doe, Ann")]


def test_a_name_with_nul_is_refused() -> None:
    with pytest.raises(RecipientError, match="CR, LF or NUL"):
        Recipient("ann@example.com", "Ann\0")


def test_a_recipient_may_have_only_a_phone() -> None:
    carl = Recipient(addresses={"phone": "+49 (30) 123-4567"}, name="Carl")
    assert (carl.address, carl.address_for("phone"), carl.address_for("email")) == ("", "+49301234567", None)
    assert (carl.ref, str(carl)) == ("+49301234567", "Carl (+49301234567)")


def test_the_email_shorthand_is_the_email_address_of_the_addresses() -> None:
    ann = Recipient("ann@example.com", addresses={"phone": "+4930123"})
    assert ann.addresses == {"phone": "+4930123", "email": "ann@example.com"}
    assert Recipient(addresses={"email": "ann@example.com"}).address == "ann@example.com"


def test_a_recipient_with_two_different_email_addresses_is_refused() -> None:
    with pytest.raises(RecipientError, match=r"gives two email addresses"):
        Recipient("ann@example.com", addresses={"email": "bob@example.com"})


@pytest.mark.parametrize("phone", ["", "12", "+49 30 12x", "+49\n301234", "0" * 21])
def test_a_malformed_phone_is_refused_naming_it(phone: str) -> None:
    with pytest.raises(RecipientError, match=r"is not a phone number"):
        Recipient(addresses={"phone": phone})


def test_an_object_with_only_a_phone_attribute_is_a_recipient() -> None:
    class Member:
        phone, name = "+49 30 1234567", "Carl"

    [carl] = recipients_of(Member(), "borrower")
    assert (carl.address_for("phone"), carl.name, carl.party) == ("+49301234567", "Carl", "borrower")


def test_an_object_with_neither_email_nor_phone_set_is_refused() -> None:
    class Member:
        email, phone = None, None

    with pytest.raises(RecipientError, match=r"has no email address"):
        recipients_of(Member(), "borrower")
