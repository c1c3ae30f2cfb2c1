"""``Text``: one body, no subject; inline or from a ``.text.txt`` template with locale variants."""

from __future__ import annotations

from pathlib import Path

import pytest
from notifiers import Email, Message, MessageError, TemplateError, Templates, Text


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    (tmp_path / "reset.text.txt").write_text("Your code: {{ code }}\n")
    (tmp_path / "reset.de.text.txt").write_text("Ihr Code: {{ code }}\n")
    (tmp_path / "blank.text.txt").write_text("  {{ '' }}\n")
    return Templates(tmp_path)


def test_a_text_and_an_email_keep_the_same_message_contract() -> None:
    assert isinstance(Text("hi"), Message) and isinstance(Email(subject="s", text="t"), Message)
    assert (Text.kind, Email.kind) == ("text", "email")


def test_an_inline_text_is_rendered_as_it_is() -> None:
    assert Text("Your code: 1234").rendered(None, {}).body == "Your code: 1234"


def test_a_text_template_is_rendered_from_its_text_txt_file(templates: Templates) -> None:
    assert Text(template="reset").rendered(templates, {"code": "1234"}).body == "Your code: 1234"

def test_a_text_template_has_a_variant_per_locale(templates: Templates) -> None:
    text = Text(template="reset", context={"code": "1234"})
    assert text.rendered(templates, {}, "de_AT").body == "Ihr Code: 1234"
    assert text.rendered(templates, {}, None).body == "Your code: 1234"


def test_a_text_needs_a_body_or_a_template() -> None:
    with pytest.raises(MessageError, match=r"Text has neither body= nor template="):
        Text()


def test_a_text_body_with_nul_is_refused() -> None:
    with pytest.raises(MessageError, match=r"contains a NUL character"):
        Text("a\0b")


def test_a_missing_text_template_is_named(templates: Templates) -> None:
    with pytest.raises(MessageError, match=r"Text template 'gone' not found: gone.text.txt is not in"):
        Text(template="gone").rendered(templates, {})


def test_a_text_template_rendering_empty_is_refused(templates: Templates) -> None:
    with pytest.raises(MessageError, match=r"Template 'blank.text.txt' rendered an empty text"):
        Text(template="blank").rendered(templates, {})


def test_a_text_template_without_a_templates_folder_says_how_to_declare_one() -> None:
    with pytest.raises(TemplateError, match=r"declares no templates folder"):
        Text(template="reset").rendered(None, {})
