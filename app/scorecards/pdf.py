"""The scorecard as an A4 PDF (WeasyPrint), from the same data and plots as the page.

It speaks the reader's language like the page (the same templates, labels and number filters),
and in French it follows French typography: a narrow no-break space before ``; : ! ?`` and
``%`` and inside guillemets, whatever spacing the catalog or a template put there.
"""

from __future__ import annotations

import re
from typing import Any

from weasyprint import HTML

from app.core.i18n import get_locale
from app.core.templating import templates
from app.posters.service import STATIC_DIR, StaticFilesOnly

PRINT_TEMPLATE = "scorecards/print.html"
STYLESHEET = "css/results.css"

NARROW_NBSP = "\u202f"
# Tags and the text between them; style and script bodies are code, never prose.
_TAG = re.compile(r"(<[^>]*>)")
_CODE_OPENS = re.compile(r"<(style|script)\b", re.IGNORECASE)
_CODE_CLOSES = re.compile(r"</(style|script)\s*>", re.IGNORECASE)
# An HTML entity ("&amp;") is matched first so that its ";" is never taken for punctuation.
# A mark counts as punctuation only before a space or the end of the text: "10:30",
# "http://" and "?lang=fr" stay as they are.
_HIGH_PUNCTUATION = re.compile(r"(&#?\w+;)|[ \u00a0\u202f]*([;:!?])(?=\s|$)")
_OPENING_GUILLEMET = re.compile(r"«[ \u00a0\u202f]*")
_CLOSING_GUILLEMET = re.compile(r"[ \u00a0\u202f]*»")
# "95 %" must not break between the number and its sign.
_PERCENT = re.compile(r"(\d)[ \u00a0]%")


def _french_text(text: str) -> str:
    """One text node in French typography."""
    text = _HIGH_PUNCTUATION.sub(
        lambda match: match[1] if match[1] else NARROW_NBSP + match[2], text
    )
    text = _OPENING_GUILLEMET.sub("«" + NARROW_NBSP, text)
    text = _CLOSING_GUILLEMET.sub(NARROW_NBSP + "»", text)
    return _PERCENT.sub(r"\1" + NARROW_NBSP + "%", text)


def french_typography(html: str) -> str:
    """``html`` with French spacing in its text nodes (tags, styles and scripts untouched)."""
    parts = _TAG.split(html)
    in_code = False
    for index, part in enumerate(parts):
        if index % 2:  # a tag
            if _CODE_OPENS.match(part):
                in_code = True
            elif _CODE_CLOSES.match(part):
                in_code = False
        elif not in_code:
            parts[index] = _french_text(part)
    return "".join(parts)


def render_html(context: dict[str, Any]) -> str:
    """The print page's HTML in the reader's language."""
    locale = get_locale()
    # Rendered outside ``render()``: the locale the page layout gets from it is given here.
    html = templates.get_template(PRINT_TEMPLATE).render(
        {**context, "stylesheet": STYLESHEET, "locale": locale}
    )
    return french_typography(html) if locale == "fr" else html


def render_pdf(context: dict[str, Any]) -> bytes:
    """The print page as PDF bytes (static files only: a PDF fetches nothing from outside)."""
    html = render_html(context)
    document = HTML(string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticFilesOnly())
    pdf = document.write_pdf()
    assert pdf is not None  # no target given, so WeasyPrint returns the bytes
    return pdf
