"""Small text helpers shared by domains."""

from __future__ import annotations

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def search_key(text: str) -> str:
    """Lower-case, accent-free, punctuation-free form used for name search.

    "Saint-Étienne" and "saint etienne" share the key "saint etienne", on every database.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    without_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", without_accents.lower().replace("œ", "oe")).strip()
