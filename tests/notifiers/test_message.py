from __future__ import annotations

from pathlib import Path

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
