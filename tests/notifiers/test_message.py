from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import notifiers.messages.email as message_module
import pytest
from notifiers import Email, MessageError, Recipient, TemplateError, Templates, message_id

TEMPLATES = Templates(Path(__file__).parents[1] / "templates")
ANN = Recipient("ann@example.com", "Ann")


def test_cr_or_lf_in_a_subject_is_refused() -> None:
    with pytest.raises(MessageError, match="Subject 'Hi\\\\r\\\\nBcc: x' contains CR or LF"):
        Email(subject="Hi\r\nBcc: x", text="body")


def test_cr_or_lf_in_a_header_is_refused() -> None:
    with pytest.raises(MessageError, match="Header X-Tag"):
        Email(subject="Hi", text="body", headers={"X-Tag": "a\nb"})


def test_template_text_and_html_are_rendered_and_html_is_autoescaped() -> None:
    email = Email(subject="s", template="shipped").rendered(
        TEMPLATES, {"recipient": Recipient("a@example.com", "<Ann>"), "subject": type("S", (), {"id": 7})})
    assert email.text == "Hello <Ann>, order 7 is on its way."
    assert email.html == "<p>Hello &lt;Ann&gt;, order 7 is on its way.</p>"


def test_a_missing_template_is_named() -> None:
    with pytest.raises(TemplateError, match=r"Template 'nope' not found: neither nope.txt nor nope.html"):
        Email(subject="s", template="nope").rendered(TEMPLATES, {})


def test_a_template_that_does_not_compile_is_named_with_its_line() -> None:
    with pytest.raises(TemplateError, match=r"Template 'broken.txt' does not compile, line 1") as caught:
        Email(subject="s", template="broken").rendered(TEMPLATES, {})
    assert (caught.value.template, caught.value.lineno) == ("broken.txt", 1)


def test_an_undefined_template_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateError, match=r"'no_such_variable' is undefined"):
        Email(subject="s", template="undefined").rendered(TEMPLATES, {})


def test_mime_has_both_parts_and_a_message_id_from_the_key() -> None:
    mime = Email(subject="Hi", text="plain", html="<b>rich</b>").to_mime(ANN, sender="Shop <shop@example.com>",
                                                                         key="abc123")
    assert mime["Message-ID"] == "<abc123@example.com>"
    assert mime["To"] == "Ann <ann@example.com>"
    assert [part.get_content_type() for part in mime.iter_parts()] == ["text/plain", "text/html"]


def test_the_same_key_always_gives_the_same_message_id() -> None:
    assert message_id("k/1", "a@x.org") == message_id("k/1", "a@x.org") != message_id("k/2", "a@x.org")


SHOP = "Shop <shop@example.com>"
LONG_SUBJECT = "Your loan application 4711 has been accepted by the underwriting team of Example Bank today"


def meaning(data: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str | None, str | None]]]:
    """What a reader gets from ``data``: the header fields and, part by part, type, charset and text.

    The Date (it moves with the clock), the multipart boundary and the transfer encoding are form, not meaning.
    """
    message = email.message_from_bytes(data, policy=email.policy.default)
    fields = sorted((name, str(value)) for name, value in message.items()
                    if name not in ("Date", "Content-Type", "Content-Transfer-Encoding"))
    parts = [(part.get_content_type(), part.get_content_charset(),
              None if part.is_multipart() else part.get_content().replace("\r\n", "\n")) for part in message.walk()]
    return fields, parts


SAME_MEANING = {
    "plain ASCII text": (Email(subject="Hi", text="Hello Ann,\nyour order shipped.\n"), ANN),
    "text and HTML": (Email(subject="Hi", text="plain", html="<p>rich</p>"), ANN),
    "HTML only": (Email(subject="Hi", html="<p>rich</p>"), ANN),
    "a non-ASCII subject": (Email(subject="Grüße aus Köln", text="body"), ANN),
    "a non-ASCII display name": (Email(subject="Hi", text="body"), Recipient("jorg@example.com", "Jörg")),
    "a non-ASCII body": (Email(subject="Hi", text="Grüße\n", html="<p>Grüße</p>"), ANN),
    "a display name needing quotes": (Email(subject="Hi", text="body"), Recipient("ann@example.com", 'Doe, "Ann" J.')),
    "a very long subject": (Email(subject=LONG_SUBJECT, text="body"), ANN),
    "extra headers": (Email(subject="Hi", text="body", headers={"X-Tag": "loans", "List-Id": "<loans.example.com>"}),
                      ANN),
    "a Reply-To header": (Email(subject="Hi", text="body", headers={"Reply-To": "Help <help@example.com>"}), ANN),
    "mixed line endings and a long body line": (Email(subject="Hi", text="a\r\nb\rc\n" + "x" * 500), ANN),
}


@pytest.mark.parametrize(("message", "to"), SAME_MEANING.values(), ids=SAME_MEANING.keys())
def test_bytes_carry_the_headers_and_bodies_of_the_mime_message(message: Email, to: Recipient) -> None:
    mime = message.to_mime(to, sender=SHOP, key="abc123").as_bytes(policy=email.policy.SMTP)
    assert meaning(message.to_bytes(to, sender=SHOP, key="abc123")) == meaning(mime)


@pytest.mark.parametrize(("message", "to"), SAME_MEANING.values(), ids=SAME_MEANING.keys())
def test_bytes_end_every_line_in_crlf(message: Email, to: Recipient) -> None:
    data = message.to_bytes(to, sender=SHOP, key="abc123")
    alone = data.replace(b"\r\n", b"")
    assert data.endswith(b"\r\n") and b"\r" not in alone and b"\n" not in alone


PLAIN = {
    "text": Email(subject="Hi", text="Hello Ann,\n\nyour order shipped.\n"),
    "text and HTML": Email(subject="Hi", text="plain", html="<p>rich</p>\n"),
    "HTML only": Email(subject="Hi", html="<p>rich</p>"),
    "a long subject": Email(subject=LONG_SUBJECT, text="body"),
    "an unstructured extra header": Email(subject="Hi", text="body", headers={"X-Tag": "loans"}),
}


@pytest.mark.parametrize("message", PLAIN.values(), ids=PLAIN.keys())
def test_a_plain_ascii_email_is_written_without_the_mime_message(message: Email,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Email, "_mime", lambda *args, **kwargs: pytest.fail("the email package was used"))
    data = message.to_bytes(ANN, sender=SHOP, key="abc123")
    head = data.partition(b"\r\n\r\n")[0]
    assert b"=?utf-8?" not in data and b"Content-Transfer-Encoding: 7bit" in data
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


def test_a_long_subject_is_folded_at_spaces_into_lines_of_at_most_78_characters() -> None:
    data = Email(subject=LONG_SUBJECT, text="body").to_bytes(ANN, sender=SHOP, key="abc123")
    assert data.startswith(b"Subject: Your loan application 4711 has been accepted by the underwriting team\r\n"
                           b" of Example Bank today\r\n")


ENCODED_HEADERS = {
    "a non-ASCII subject": (Email(subject="Grüße", text="body"), ANN),
    "a display name needing quotes": (Email(subject="Hi", text="body"), Recipient("ann@example.com", "Doe, Ann")),
    "a non-ASCII display name with a comma": (Email(subject="Hi", text="body"),
                                              Recipient("x7@ok.example", "Zoë, <victim@evil.example>")),
    "an encoded word in the subject": (Email(subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=", text="body"), ANN),
    "a word too long to fold": (Email(subject="Hi " + "x" * 80, text="body"), ANN),
    "an address header among the headers": (Email(subject="Hi", text="body", headers={"Reply-To": "a@example.com"}),
                                            ANN),
}


@pytest.mark.parametrize(("message", "to"), ENCODED_HEADERS.values(), ids=ENCODED_HEADERS.keys())
def test_any_header_field_with_a_7bit_body_is_written_without_the_email_package(
        message: Email, to: Recipient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Email, "_mime", lambda *args, **kwargs: pytest.fail("the email package was used"))
    data = message.to_bytes(to, sender=SHOP, key="abc123")
    assert data.isascii() and max(len(line) for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n")) <= 78


NOT_7BIT = {
    "a non-ASCII body": (Email(subject="Hi", text="Grüße"), ANN),
    "a body line over 998 octets": (Email(subject="Hi", text="x" * 999), ANN),
}


@pytest.mark.parametrize(("message", "to"), NOT_7BIT.values(), ids=NOT_7BIT.keys())
def test_a_body_that_is_not_7bit_is_the_flattened_mime_message(message: Email, to: Recipient,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[EmailMessage] = []
    original = Email._mime

    def mime(self: Email, *args: Any, **kwargs: Any) -> EmailMessage:
        built.append(original(self, *args, **kwargs))
        return built[-1]

    monkeypatch.setattr(Email, "_mime", mime)
    data = message.to_bytes(to, sender=SHOP, key="abc123")
    assert len(built) == 1 and meaning(data) == meaning(built[0].as_bytes(policy=email.policy.SMTP))


def test_a_bcc_header_is_left_out_of_the_bytes_as_smtp_send_message_does() -> None:
    message = Email(subject="Hi", text="body", headers={"Bcc": "boss@example.com"})
    assert "Bcc" in message.to_mime(ANN, sender=SHOP, key="k")
    assert b"boss@example.com" not in message.to_bytes(ANN, sender=SHOP, key="k")


def test_the_date_is_in_utc_with_a_numeric_zone_not_the_obsolete_gmt() -> None:
    data = Email(subject="Hi", text="body").to_bytes(ANN, sender=SHOP, key="k")
    assert re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n", data)


def test_an_email_without_a_body_is_refused_by_to_bytes_too() -> None:
    with pytest.raises(MessageError, match="has no body"):
        Email(subject="Hi", text=None, template="t").to_bytes(ANN, sender=SHOP, key="k")


def test_multipart_bytes_use_a_boundary_found_in_neither_body(monkeypatch: pytest.MonkeyPatch) -> None:
    boundary_like = "--===============1234567890123456789=="
    drawn = iter([1234567890123456789, 42])  # the first boundary drawn is in the bodies: another is drawn
    monkeypatch.setattr(message_module.random, "randrange", lambda _: next(drawn))
    data = Email(subject="Hi", text=boundary_like, html=boundary_like).to_bytes(ANN, sender=SHOP, key="k")
    assert b'boundary="===============0000000000000000042=="' in data
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert [part.get_content().strip() for part in message.iter_parts()] == [boundary_like, boundary_like]


@pytest.mark.parametrize("name", ["From", "to", "Subject", "Date", "Message-ID", "Content-Type"])
def test_a_header_the_email_writes_itself_is_refused_among_the_headers(name: str) -> None:
    with pytest.raises(MessageError, match=f"Header '{name}' is written by the Email itself"):
        Email(subject="Hi", text="body", headers={name: "x@example.com"})


def test_a_non_ascii_extra_header_is_written_encoded_and_reads_back_as_given() -> None:
    written = Email(subject="Hi", text="body", headers={"X-Tag": "café"}).to_bytes(ANN, sender="t@example.com", key="k1")
    assert written.partition(b"\r\n\r\n")[0].isascii()
    assert email.message_from_bytes(written, policy=email.policy.default)["X-Tag"] == "café"
