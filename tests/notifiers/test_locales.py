"""Locales: the template variant a recipient reads, and dates and numbers formatted for them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from notifiers import Email, MessageError, Recipient, Templates
from notifiers.locales import locale_chain

TEMPLATES = Templates(Path(__file__).parents[1] / "templates")
WHEN = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.timezone.utc)


def render(locale: str | None, subject: str = "") -> Email:
    ann = Recipient("ann@example.com", "Ann", locale=locale)
    return Email(subject=subject, template="invoice", context={"amount": 1234.5, "when": WHEN}).rendered(
        TEMPLATES, {"recipient": ann}, locale)


def test_a_locale_tries_its_region_then_its_language() -> None:
    assert locale_chain("pt-BR") == ["pt_BR", "pt"]


def test_a_german_recipient_reads_the_german_variant_with_german_numbers_and_dates() -> None:
    email = render("de")
    assert email.text == "Hallo Ann, Sie schulden 1.234,50\xa0€ seit 24.11.2026."
    assert email.subject == "Rechnung über 1.234,5 EUR"


def test_a_regional_locale_falls_back_to_its_language() -> None:
    assert render("de_AT").text is not None and render("de_AT").text.startswith("Hallo Ann")  # type: ignore[union-attr]


def test_a_locale_without_a_variant_falls_back_to_the_default_template_but_keeps_its_formats() -> None:
    email = render("fr")
    assert email.text == "Hello Ann, you owe 1\u202f234,50\xa0€ since 24 nov. 2026."
    assert email.subject == "Invoice of 1\u202f234,5 EUR"


def test_a_recipient_without_a_locale_reads_the_default_in_english() -> None:
    email = render(None)
    assert (email.text, email.html) == ("Hello Ann, you owe €1,234.50 since Nov 24, 2026.", "<p>Hello Ann</p>")


def test_a_variant_does_not_mix_languages_with_the_default_html() -> None:
    assert render("de").html is None


def test_a_given_subject_wins_over_the_subject_template() -> None:
    assert render("de", subject="Your invoice").subject == "Your invoice"


def test_a_template_without_a_subject_variant_needs_a_subject() -> None:
    with pytest.raises(MessageError, match=r"has no subject: give subject=, or add shipped.subject.txt"):
        Email(template="shipped").rendered(TEMPLATES, {"recipient": Recipient("a@example.com", "A"),
                                                       "subject": type("S", (), {"id": 7})})


def test_an_email_without_subject_or_template_is_refused() -> None:
    with pytest.raises(MessageError, match="Email has no subject"):
        Email(text="body")


def test_a_localized_body_without_a_localized_subject_takes_the_default_subject() -> None:
    email = Email(template="greeting").rendered(TEMPLATES, {"recipient": Recipient("a@example.com", "Ann")}, "de")
    assert (email.subject, email.text) == ("Welcome", "Hallo Ann.")
