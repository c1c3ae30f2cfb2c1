"""Jinja2 templates for message content: HTML autoescaped, undefined variables are errors."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path
from typing import Any

import jinja2

from .errors import TemplateError
from .locales import FILTERS, locale_chain

__all__ = ["Templates"]


class _Undefined(jinja2.StrictUndefined):
    """Undefined variables may be tested (``{% if note %}``) but not printed or used."""

    def __bool__(self) -> bool:  # type: ignore[override]
        return False


class Templates:
    """A folder of Jinja2 templates.

    ``.html`` and ``.htm`` templates are autoescaped; printing a variable the context lacks is
    an error rather than an empty string (testing it with ``{% if %}`` is allowed). The filters
    ``date``, ``datetime``, ``time``, ``number``, ``currency`` and ``percent`` format for the
    recipient's locale.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.directory),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=False),
            undefined=_Undefined,
            keep_trailing_newline=False,
        )
        self._env.filters.update(FILTERS)

    def exists(self, name: str) -> bool:
        """Whether ``name`` is a file of this folder."""
        return (self.directory / name).is_file()

    def variant(self, template: str, locale: str | None, suffixes: tuple[str, ...]) -> str:
        """The most specific ``template.<locale>`` that has a file with one of ``suffixes``, else ``template``.

        ``variant("loans/accepted", "pt_BR", (".txt", ".html"))`` tries ``loans/accepted.pt_BR``,
        then ``loans/accepted.pt``, then gives ``loans/accepted``.
        """
        for name in locale_chain(locale):
            if any(self.exists(f"{template}.{name}{suffix}") for suffix in suffixes):
                return f"{template}.{name}"
        return template

    def render(self, name: str, variables: dict[str, Any]) -> str:
        """Render template ``name`` with ``variables``.

        Raises:
            TemplateError: the template (or one it includes) is missing, does not compile, or fails
                while rendering; the message names the template and, where known, the line.
        """
        try:
            return self._env.get_template(name).render(variables)
        except jinja2.TemplateError as error:
            raise self._translated(error, name) from None

    def compile(self, name: str) -> None:
        """Compile template ``name`` without rendering it (checks such as ``tidings check``).

        Raises:
            TemplateError: the template is missing or does not compile, naming it and the line.
        """
        try:
            self._env.get_template(name)
        except jinja2.TemplateError as error:
            raise self._translated(error, name) from None

    def _translated(self, error: jinja2.TemplateError, name: str) -> TemplateError:
        """Jinja's ``error`` while loading or rendering ``name``, as a TemplateError naming the template and line."""
        if isinstance(error, jinja2.TemplateSyntaxError):
            where = error.name or name
            return TemplateError(f"Template {where!r} does not compile, line {error.lineno}: {error.message}.",
                                 template=where, lineno=error.lineno)
        if isinstance(error, jinja2.TemplateNotFound) and error.name == name:
            return TemplateError(f"Template {name!r} not found in {self.directory}.", template=name)
        where, line = self._line_of(error, name)
        if isinstance(error, jinja2.TemplateNotFound):
            return TemplateError(f"Template {where!r}, line {line}: it includes {error.name!r}, which is not "
                                 f"in {self.directory}.", template=where, lineno=line)
        return TemplateError(f"Template {where!r} failed to render, line {line}: {error}.", template=where,
                             lineno=line)

    def _line_of(self, error: Exception, name: str) -> tuple[str, int | None]:
        """The template (``name`` or one it includes) and line where ``error`` was raised, innermost first."""
        found: tuple[str, int | None] = (name, None)
        for frame, line in traceback.walk_tb(error.__traceback__):
            path = Path(frame.f_code.co_filename)
            if path.is_relative_to(self.directory):  # Jinja gives template frames the file's name and line
                found = (path.relative_to(self.directory).as_posix(), line)
        return found


@functools.lru_cache(maxsize=64)
def templates_in(directory: Path) -> Templates:
    """One shared :class:`Templates` per folder, so compiled templates are cached."""
    return Templates(directory)
