"""Template errors name the template and the line, so the reason recorded on a failed delivery leads to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from notifiers import TemplateError, Templates


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "undefined.txt").write_text("Hello,\n\nyour {{ item.title }} is {{ staus }}.\n")
    (tmp_path / "outer.txt").write_text("Hello,\n{% include 'mail/undefined.txt' %}\n")
    (tmp_path / "includes_nothing.txt").write_text("Hello,\n\n{% include 'footer.txt' %}\n")
    return Templates(tmp_path)


def test_an_undefined_variable_is_named_with_its_template_and_line(templates: Templates) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.render("mail/undefined.txt", {"item": {"title": "ladder"}})
    assert str(caught.value) == "Template 'mail/undefined.txt' failed to render, line 3: 'staus' is undefined."
    assert (caught.value.template, caught.value.lineno) == ("mail/undefined.txt", 3)


def test_an_undefined_variable_in_an_included_template_names_that_template(templates: Templates) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.render("outer.txt", {"item": {"title": "ladder"}})
    assert (caught.value.template, caught.value.lineno) == ("mail/undefined.txt", 3)


def test_a_missing_included_template_is_named_with_the_line_that_includes_it(templates: Templates) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.render("includes_nothing.txt", {})
    assert str(caught.value).startswith("Template 'includes_nothing.txt', line 3: it includes 'footer.txt', which")
    assert (caught.value.template, caught.value.lineno) == ("includes_nothing.txt", 3)
