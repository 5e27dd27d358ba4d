"""Contact channels. Codes are used in URLs, the API, stored data and exports: never translated."""

from __future__ import annotations

from typing import Literal

ChannelCode = Literal["guichet", "telephone", "courriel", "courrier", "site", "reseaux"]

#: Channel code → (French label, English label), in the order used for display.
CHANNELS: dict[str, tuple[str, str]] = {
    "guichet": ("Accueil physique", "In person (counter)"),
    "telephone": ("Téléphone", "Telephone"),
    "courriel": ("Courriel ou formulaire web", "Email or web form"),
    "courrier": ("Courrier", "Letter"),
    "site": ("Site internet", "Website"),
    "reseaux": ("Réseaux sociaux", "Social networks"),
}

#: INSTRUMENTS.md proposal: channel weights in the mystery-shopping component (sum 100).
DEFAULT_CHANNEL_WEIGHTS: dict[str, float] = {
    "guichet": 25,
    "telephone": 25,
    "courriel": 20,
    "site": 15,
    "courrier": 10,
    "reseaux": 5,
}

#: INSTRUMENTS.md proposal: tests per candidate and campaign, by channel.
DEFAULT_TESTS_PER_CHANNEL: dict[str, int] = {
    "guichet": 2,
    "telephone": 3,
    "courriel": 2,
    "courrier": 1,
    "site": 1,
    "reseaux": 1,
}
