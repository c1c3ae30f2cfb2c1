"""Locales: which template variant a recipient reads, and dates and numbers written for them.

A recipient's locale (``"de"``, ``"pt_BR"``, ``"en-GB"``) picks the most specific template
variant that exists (``loans/accepted.pt_BR.txt``, then ``loans/accepted.pt.txt``, then
``loans/accepted.txt``). Templates format values for the same locale with the filters
``date``, ``datetime``, ``time``, ``number``, ``currency`` and ``percent`` (Babel's CLDR data).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import jinja2

__all__ = ["DEFAULT_LOCALE", "FILTERS", "locale_chain"]

_log = logging.getLogger(__name__)

#: The locale used for recipients who have none, and for unknown ones.
DEFAULT_LOCALE = "en"


def locale_chain(locale: str | None) -> list[str]:
    """The variants to try for ``locale``, most specific first: ``"pt-BR"`` -> ``["pt_BR", "pt"]``."""
    if not locale:
        return []
    parts = locale.strip().replace("-", "_").split("_")
    chain = ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return [name for name in chain if name and name.replace("_", "").isalnum()]


@functools.lru_cache(maxsize=256)
def _babel_locale(name: str | None) -> Any:
    from babel import Locale, UnknownLocaleError

    for candidate in [*locale_chain(name), DEFAULT_LOCALE]:
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    raise AssertionError("the default locale is always known")  # pragma: no cover


def _locale_of(context: jinja2.runtime.Context) -> Any:
    recipient = context.get("recipient")
    return _babel_locale(context.get("locale") or getattr(recipient, "locale", None))


def _moment(value: Any) -> Any:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def _date(context: jinja2.runtime.Context, value: Any, format: str = "medium") -> str:
    from babel.dates import format_date

    return str(format_date(_moment(value), format=format, locale=_locale_of(context)))


def _datetime(context: jinja2.runtime.Context, value: Any, format: str = "medium") -> str:
    from babel.dates import format_datetime

    moment = _moment(value)
    zone = moment.tzinfo if isinstance(moment, dt.datetime) and moment.tzinfo else dt.timezone.utc
    return str(format_datetime(moment, format=format, tzinfo=zone, locale=_locale_of(context)))


def _time(context: jinja2.runtime.Context, value: Any, format: str = "short") -> str:
    from babel.dates import format_time

    moment = _moment(value)
    zone = moment.tzinfo if isinstance(moment, dt.datetime) and moment.tzinfo else dt.timezone.utc
    return str(format_time(moment, format=format, tzinfo=zone, locale=_locale_of(context)))


def _number(context: jinja2.runtime.Context, value: int | float | Decimal) -> str:
    from babel.numbers import format_decimal

    return str(format_decimal(value, locale=_locale_of(context)))


def _currency(context: jinja2.runtime.Context, value: int | float | Decimal, currency: str) -> str:
    from babel.numbers import format_currency

    return str(format_currency(value, currency, locale=_locale_of(context)))


def _percent(context: jinja2.runtime.Context, value: int | float | Decimal) -> str:
    from babel.numbers import format_percent

    return str(format_percent(value, locale=_locale_of(context)))


_FORMATTERS: dict[str, Callable[..., str]] = {
    "date": _date, "datetime": _datetime, "time": _time, "number": _number, "currency": _currency,
    "percent": _percent,
}

#: The Jinja2 filters that format for the recipient's locale, by name.
FILTERS: dict[str, Callable[..., str]] = {name: jinja2.pass_context(f) for name, f in _FORMATTERS.items()}
