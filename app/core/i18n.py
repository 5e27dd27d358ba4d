"""Translations (Babel catalogs, French first) and the current request's locale."""

from __future__ import annotations

import gettext as gettext_module
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TRANSLATIONS_DIR = Path(__file__).resolve().parents[1] / "translations"
SUPPORTED_LOCALES = ("fr", "en")
LOCALE_NAMES = {"fr": "Français", "en": "English"}

_current_locale: ContextVar[str] = ContextVar("current_locale", default="fr")


@lru_cache
def translations_for(locale: str) -> gettext_module.NullTranslations:
    """Compile the .po catalog in memory: no build step and no compiled files in the tree."""
    po_path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return gettext_module.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def set_locale(locale: str) -> None:
    _current_locale.set(locale if locale in SUPPORTED_LOCALES else SUPPORTED_LOCALES[0])


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Speak ``locale`` inside the block (an e-mail in its recipient's language), then the
    language of before again."""
    token = _current_locale.set(locale if locale in SUPPORTED_LOCALES else SUPPORTED_LOCALES[0])
    try:
        yield
    finally:
        _current_locale.reset(token)


def get_locale() -> str:
    return _current_locale.get()


def gettext(message: str) -> str:
    return translations_for(get_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations_for(get_locale()).ngettext(singular, plural, n)


_ = gettext
