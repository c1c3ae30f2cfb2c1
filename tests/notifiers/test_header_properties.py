"""Address fields read back, by the email package's standards parser, as exactly the intended addresses."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from notifiers import Email, MessageError, Recipient, RecipientError
from notifiers.addresses import parse_mailboxes, wire_address

SHOP = "Shop <shop@example.com>"
SPECIALS = ',<>"\\@;:()[].=? \t'
LOOKALIKES = st.builds("=?{}?{}?{}?=".format, st.sampled_from(["utf-8", "iso-8859-1", "x"]),
                       st.sampled_from("qQbB"), st.text(max_size=12))
NAMES = st.one_of(st.text(max_size=150), st.text(st.sampled_from(SPECIALS) | st.characters()), LOOKALIKES,
                  st.lists(st.one_of(LOOKALIKES, st.text(SPECIALS + "aé"))).map(" ".join))
ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
LABELS = st.text("abcxyz09-äöüßéñ中кир", min_size=1, max_size=12)
PLAUSIBLE = st.builds("{}@{}".format, st.lists(st.text(ATEXT + "üé", min_size=1, max_size=10), min_size=1, max_size=3)
              .map(".".join), st.lists(LABELS, min_size=1, max_size=3).map(".".join).map(lambda d: d + ".example"))
ADDRESSES = st.one_of(PLAUSIBLE, st.text())
BODIES = ["body\n", "Grüße\n"]  # written directly, and by the email package


def written(name: str | None) -> str:
    """The display name a header carries: a run of whitespace from a space or tab as one space, none at the ends."""
    return re.sub(r"[ \t]\s*", " ", name or "").strip(" ")


def read(data: bytes) -> EmailMessage:
    """The message as a standards parser reads it (a message with UTF-8 headers is decoded as UTF-8 first)."""
    head = data.partition(b"\r\n\r\n")[0]
    if head.isascii():
        return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]
    return email.message_from_string(data.decode(), policy=email.policy.default)  # type: ignore[return-value]


def longest_header_line(data: bytes) -> int:
    """The length of the longest header line, in octets without its line ending (CRLF or LF)."""
    return max(map(len, data.replace(b"\r\n", b"\n").partition(b"\n\n")[0].split(b"\n")))


def mailboxes(message: EmailMessage, field: str) -> list[tuple[str, str]]:
    return [(address.display_name, address.addr_spec) for address in message[field].addresses]


def renderings(message: Email, to: Recipient, sender: str = SHOP) -> list[bytes]:
    """Every form the message leaves in: SMTP bytes with and without 8BITMIME, and the MIME message's bytes."""
    return [message.to_bytes(to, sender=sender, key="k", eight_bit=True),
            message.to_bytes(to, sender=sender, key="k", eight_bit=False),
            message.to_mime(to, sender=sender, key="k").as_bytes()]


def recipient(address: str, name: str | None) -> Recipient:
    """The recipient, or the test stops here if it is refused (which must be for a reason it states)."""
    try:
        return Recipient(address, name)
    except RecipientError as error:
        unwritable = name is not None and any(c in "\r\n\0" or "\ud800" <= c <= "\udfff" for c in name)
        assert unwritable or "ddress" in str(error)  # CR, LF, NUL, a lone surrogate; or a bad address
        assume(False)
        raise


@pytest.mark.parametrize("body", BODIES)
@settings(max_examples=150, deadline=None)
@given(name=NAMES, address=ADDRESSES)
@example(name="Zoë, <victim@evil.example>", address="x7@ok.example")
@example(name='"Zoë" \\ =?utf-8?q?victim=40evil=2Eexample?=', address="x7@ok.example")
@example(name="Zoë", address="x@bücher.example")
@example(name="a" * 80 + "ë, <v@evil.example>", address="x7@ok.example")
def test_any_display_name_and_address_read_back_exactly_in_to(body: str, name: str, address: str) -> None:
    to = recipient(address, name)
    for data in renderings(Email(subject="Hi", text=body), to):
        assert mailboxes(read(data), "To") == [(written(name), wire_address(to.address))]
        assert longest_header_line(data) <= 998


def test_a_name_too_long_for_one_line_keeps_the_lines_within_998_octets_and_the_address_alone() -> None:
    data = Email(subject="Hi", text="body").to_bytes(Recipient("x7@ok.example", "€, <v@evil.example> " * 60),
                                                     sender=SHOP, key="k")
    [(name, address)] = mailboxes(read(data), "To")
    assert address == "x7@ok.example" and name.replace(" ", "") == ("€,<v@evil.example>" * 60)
    assert longest_header_line(data) <= 998


@settings(max_examples=150, deadline=None)
@given(name=NAMES, address=PLAUSIBLE)
@example(name="Zoë, <victim@evil.example>", address="shop@example.com")
def test_any_sender_name_and_address_read_back_exactly_in_from(name: str, address: str) -> None:
    sender = recipient(address, name)
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{sender.address}>'
    try:
        intended = [(written(shown), wire_address(addr)) for shown, addr in parse_mailboxes("From", quoted)]
        message = Email(subject="Hi", text="Grüße\n", sender=quoted)
    except MessageError:
        assume(False)  # a name a quoted string cannot carry (an encoded word in it is a defect): refused
    for data in renderings(message, Recipient("ann@example.com")):
        assert mailboxes(read(data), "From") == intended


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.lists(st.tuples(NAMES, PLAUSIBLE), min_size=1, max_size=3).map(
    lambda pairs: ", ".join('"' + n.replace("\\", "\\\\").replace('"', '\\"') + f'" <{a}>' for n, a in pairs))))
@example('"Zoë, <victim@evil.example>" <x7@ok.example>, =?utf-8?b?Wm/DqywgPHZAZS54Pg==?= <y@ok.example>')
def test_reply_to_and_cc_mean_exactly_what_their_value_means(value: str) -> None:
    try:
        message = Email(subject="Hi", text="body", headers={"Reply-To": value, "Cc": value})
    except MessageError:
        event("refused")
        return  # refused: not one list of good addresses, said so
    event("read back")
    intended = [(written(name), wire_address(address)) for name, address in parse_mailboxes("Cc", value)]
    for data in renderings(message, Recipient("ann@example.com")):
        parsed = read(data)
        assert mailboxes(parsed, "Reply-To") == mailboxes(parsed, "Cc") == intended


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(min_size=1), LOOKALIKES, st.text(" \tab=?é", min_size=1)))
@example(" leading and trailing ")
@example("=?utf-8?q?Gr=C3=BC=C3=9Fe?=")
def test_any_subject_and_unstructured_header_read_back_exactly(text: str) -> None:
    try:
        message = Email(subject=text, text="body", headers={"X-Tag": text})
    except MessageError:
        assert any(c in "\r\n" or "\ud800" <= c <= "\udfff" for c in text)  # CR, LF or a lone surrogate
        return
    for data in renderings(message, Recipient("ann@example.com")):
        parsed = read(data)
        assert str(parsed["Subject"]) == str(parsed["X-Tag"]) == text


def test_a_display_name_with_a_comma_and_an_address_is_one_address_not_two() -> None:
    data = Email(subject="Hi", text="body").to_bytes(Recipient("x7@ok.example", "Zoë, <victim@evil.example>"),
                                                     sender=SHOP, key="k")
    assert mailboxes(read(data), "To") == [("Zoë, <victim@evil.example>", "x7@ok.example")]


def test_a_non_ascii_domain_is_written_in_its_ascii_form() -> None:
    data = Email(subject="Hi", text="body").to_bytes(Recipient("x@bücher.example", "Zoë"), sender=SHOP, key="k")
    assert mailboxes(read(data), "To") == [("Zoë", "x@xn--bcher-kva.example")] and data.isascii()


def test_a_recipient_with_a_non_ascii_domain_can_be_shown() -> None:
    assert str(Recipient("x@bücher.example", "Zoë, Ann")) == '"Zoë, Ann" <x@bücher.example>'


@pytest.mark.parametrize(("value", "refusal"), [
    ("ann@example.com, bob@example.com", "names 2 addresses"),
    ("undisclosed-recipients:;", "not a list of addresses"),
    ("Ann <ann@example.com", "not a list of addresses"),
])
def test_a_sender_that_is_not_one_good_address_is_refused(value: str, refusal: str) -> None:
    with pytest.raises(MessageError, match=refusal):
        Email(subject="Hi", text="body", sender=value)
