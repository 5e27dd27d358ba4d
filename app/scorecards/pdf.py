"""The scorecard as an A4 PDF (WeasyPrint), from the same data and plots as the page."""

from __future__ import annotations

from typing import Any

from weasyprint import HTML

from app.core.templating import templates
from app.posters.service import STATIC_DIR, StaticFilesOnly

PRINT_TEMPLATE = "scorecards/print.html"
STYLESHEET = "css/results.css"


def render_pdf(context: dict[str, Any]) -> bytes:
    html = templates.get_template(PRINT_TEMPLATE).render({**context, "stylesheet": STYLESHEET})
    document = HTML(string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticFilesOnly())
    pdf = document.write_pdf()
    assert pdf is not None  # no target given, so WeasyPrint returns the bytes
    return pdf
