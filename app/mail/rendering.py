"""Rendering an e-mail from its templates in the recipient's language.

Each message has three templates in ``app/templates/mail/``: ``NAME.subject.txt``,
``NAME.txt`` (the plain-text part) and ``NAME.html`` (the HTML part, extending
``mail/layout.html``). Plain text is not HTML-escaped; the HTML part is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jinja2

from app.core.i18n import gettext, ngettext, use_locale
from app.core.templating import TEMPLATES_DIR, templates

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR / "mail")),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
# The same number and date formatting as the pages (Babel, the current locale).
_environment.filters.update({name: templates.env.filters[name] for name in ("number", "date")})


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def template_exists(name: str) -> bool:
    return (TEMPLATES_DIR / "mail" / f"{name}.txt").is_file()


def render_message(name: str, language: str, context: dict[str, Any]) -> RenderedMessage:
    """Subject, text and HTML of message ``name`` in ``language``."""
    with use_locale(language):
        values = {**context, "language": language}
        subject = _environment.get_template(f"{name}.subject.txt").render(values)
        text = _environment.get_template(f"{name}.txt").render(values)
        html = _environment.get_template(f"{name}.html").render(values)
    # Only ASCII whitespace is collapsed: French keeps its narrow no-break spaces.
    subject = re.sub(r"[ \t\r\n]+", " ", subject).strip()
    return RenderedMessage(subject=subject, text=text.strip() + "\n", html=html)
