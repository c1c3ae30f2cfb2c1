"""``ConsoleChannel``: one line per message, an email's subject or a text's body."""

from __future__ import annotations

import io

from notifiers import ConsoleChannel, Email, Recipient, Text


def test_an_email_is_printed_as_its_subject() -> None:
    stream = io.StringIO()
    ConsoleChannel(stream).send(Email(subject="Order 7 paid", text="x"), Recipient("ann@example.com"), key="k")
    assert stream.getvalue() == "to ann@example.com: Order 7 paid\n"


def test_a_text_is_printed_as_its_body_to_the_phone() -> None:
    stream = io.StringIO()
    ConsoleChannel(stream).send(Text("Your code: 1234"), Recipient(addresses={"phone": "+4930123"}), key="k")
    assert stream.getvalue() == "to +4930123: Your code: 1234\n"
