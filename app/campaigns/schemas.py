"""A campaign's configuration, validated with messages that name the field."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.authorities.models import AuthorityKind


class Channel(StrEnum):
    """Contact channels; codes are used in URLs, the API and exports and are never translated."""

    guichet = "guichet"
    telephone = "telephone"
    courriel = "courriel"
    courrier = "courrier"
    site = "site"
    reseaux = "reseaux"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CategoryRule(StrictModel):
    """Authorities of these kinds with population in [population_min, population_max)."""

    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    label_fr: str = Field(min_length=1, max_length=120)
    label_en: str = Field(min_length=1, max_length=120)
    kinds: list[AuthorityKind] = Field(min_length=1)
    population_min: int = Field(default=0, ge=0)
    population_max: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _band_in_order(self) -> CategoryRule:
        if self.population_max is not None and self.population_max <= self.population_min:
            raise ValueError("population_max must be greater than population_min")
        return self

    def label(self, language: str) -> str:
        """The label in ``language`` (``"en"``; anything else gives French)."""
        return self.label_en if language == "en" else self.label_fr

    def matches(self, kind: str, population: int) -> bool:
        upper_ok = self.population_max is None or population < self.population_max
        return kind in self.kinds and self.population_min <= population and upper_ok


class ComponentWeights(StrictModel):
    survey: float = Field(default=0.4, ge=0)
    mystery: float = Field(default=0.6, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> ComponentWeights:
        if self.survey + self.mystery <= 0:
            raise ValueError("survey and mystery weights cannot both be 0")
        return self


class Eligibility(StrictModel):
    """Who is ranked; the others still get a (flagged) scorecard."""

    min_respondents: int = Field(default=30, ge=0)
    min_channels_tested: int = Field(default=4, ge=0, le=6)
    min_visits_per_tested_channel: int = Field(default=1, ge=1)


class MissingChannel(StrEnum):
    """What a candidate's score does when a weighted channel has no approved visit.

    Renormalising the channel weights over the channels present would reward the gap (a
    missing letter test gains about +1.25 points): METHODOLOGY.md step 4 forbids it.
    """

    impute = "impute"  # the category's channel mean, with the between-candidate variance
    unranked = "unranked"  # scored and flagged, but left out of the ranking


class PublicationScope(StrEnum):
    """Who public pages and open data name (AFNOR names laureates, not low scorers)."""

    all = "all"  # every candidate
    laureates_and_top = "laureates_and_top"  # the laureates and the top k of each category
    laureates = "laureates"  # the laureates only; the others are counted


class PublicationPolicy(StrictModel):
    scope: PublicationScope = PublicationScope.laureates_and_top
    top_k: int = Field(default=10, ge=1, le=1000)


class Replicates(StrictModel):
    """Second tests of the single-test channels on a random subsample of candidates.

    A channel tested once per candidate has no within-candidate replicate, so its pooled
    variance (METHODOLOGY.md step 4) would not exist: the mission planner gives a second
    test to ``share`` of the candidates of each category, and at least ``minimum``.
    """

    share: float = Field(default=0.15, ge=0, le=1)
    minimum: int = Field(default=10, ge=0)


DEFAULT_CHANNEL_WEIGHTS = {
    Channel.guichet: 25.0,
    Channel.telephone: 25.0,
    Channel.courriel: 20.0,
    Channel.site: 15.0,
    Channel.courrier: 10.0,
    Channel.reseaux: 5.0,
}
DEFAULT_TESTS_PER_CHANNEL = {
    Channel.guichet: 2,
    Channel.telephone: 3,
    Channel.courriel: 2,
    Channel.courrier: 1,
    Channel.site: 1,
    Channel.reseaux: 1,
}


def _commune_band(key: str, fr: str, en: str, low: int, high: int | None) -> CategoryRule:
    return CategoryRule(
        key=key,
        label_fr=fr,
        label_en=en,
        kinds=[AuthorityKind.commune],
        population_min=low,
        population_max=high,
    )


def default_categories() -> list[CategoryRule]:
    """Population strata as the national trophies use them (communes by size, EPCI, others)."""
    return [
        _commune_band(
            "communes-0-3500",
            "Communes de moins de 3 500 habitants",
            "Municipalities under 3,500",
            0,
            3_500,
        ),
        _commune_band(
            "communes-3500-10000",
            "Communes de 3 500 à 10 000 habitants",
            "Municipalities of 3,500 to 10,000",
            3_500,
            10_000,
        ),
        _commune_band(
            "communes-10000-20000",
            "Communes de 10 000 à 20 000 habitants",
            "Municipalities of 10,000 to 20,000",
            10_000,
            20_000,
        ),
        _commune_band(
            "communes-20000-50000",
            "Communes de 20 000 à 50 000 habitants",
            "Municipalities of 20,000 to 50,000",
            20_000,
            50_000,
        ),
        _commune_band(
            "communes-50000-100000",
            "Communes de 50 000 à 100 000 habitants",
            "Municipalities of 50,000 to 100,000",
            50_000,
            100_000,
        ),
        _commune_band(
            "communes-100000-plus",
            "Communes de plus de 100 000 habitants",
            "Municipalities over 100,000",
            100_000,
            None,
        ),
        CategoryRule(
            key="intercommunalites",
            label_fr="Intercommunalités",
            label_en="Inter-municipal bodies",
            kinds=[
                AuthorityKind.epci_cc,
                AuthorityKind.epci_ca,
                AuthorityKind.epci_cu,
                AuthorityKind.epci_metro,
                AuthorityKind.epci_met69,
            ],
        ),
        CategoryRule(
            key="departements-regions",
            label_fr="Départements et régions",
            label_en="Départements and regions",
            kinds=[AuthorityKind.departement, AuthorityKind.region],
        ),
    ]


class CampaignConfig(StrictModel):
    categories: list[CategoryRule] = Field(default_factory=default_categories, min_length=1)
    channel_weights: dict[Channel, float] = Field(
        default_factory=lambda: dict(DEFAULT_CHANNEL_WEIGHTS)
    )
    component_weights: ComponentWeights = Field(default_factory=ComponentWeights)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    tests_per_channel: dict[Channel, int] = Field(
        default_factory=lambda: dict(DEFAULT_TESTS_PER_CHANNEL)
    )
    # When true, only single-use invitation links open the questionnaire (no public link).
    invitations_only: bool = False
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1)
    seed: int = Field(default=20260101, ge=0, le=2**32 - 1)
    missing_channel: MissingChannel = MissingChannel.impute
    publication: PublicationPolicy = Field(default_factory=PublicationPolicy)
    replicates: Replicates = Field(default_factory=Replicates)

    @field_validator("channel_weights")
    @classmethod
    def _channel_weights_valid(cls, weights: dict[Channel, float]) -> dict[Channel, float]:
        negative = [channel.value for channel, weight in weights.items() if weight < 0]
        if negative:
            raise ValueError(f"weights must be ≥ 0 (negative for {', '.join(negative)})")
        if sum(weights.values()) <= 0:
            raise ValueError("at least one channel needs a positive weight")
        return weights

    @field_validator("tests_per_channel")
    @classmethod
    def _tests_non_negative(cls, tests: dict[Channel, int]) -> dict[Channel, int]:
        negative = [channel.value for channel, count in tests.items() if count < 0]
        if negative:
            raise ValueError(f"test counts must be ≥ 0 (negative for {', '.join(negative)})")
        return tests

    def category_labels(self, language: str) -> dict[str, str]:
        """Category key → its label in ``language``, in the campaign's order."""
        return {category.key: category.label(language) for category in self.categories}

    @model_validator(mode="after")
    def _categories_consistent(self) -> CampaignConfig:
        keys = [category.key for category in self.categories]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"categories: duplicate key(s) {', '.join(duplicates)}")
        # Two categories must never claim the same authority: a candidate has exactly one.
        for index, first in enumerate(self.categories):
            for second in self.categories[index + 1 :]:
                shared = set(first.kinds) & set(second.kinds)
                if shared and _bands_overlap(first, second):
                    raise ValueError(
                        f"categories: {first.key} and {second.key} overlap "
                        f"for kind {sorted(shared)[0].value}"
                    )
        return self

    def category_for(self, kind: str, population: int) -> CategoryRule | None:
        return next((c for c in self.categories if c.matches(kind, population)), None)


def _bands_overlap(first: CategoryRule, second: CategoryRule) -> bool:
    first_max = first.population_max if first.population_max is not None else float("inf")
    second_max = second.population_max if second.population_max is not None else float("inf")
    return first.population_min < second_max and second.population_min < first_max


class CampaignCreate(StrictModel):
    year: int = Field(ge=2000, le=2100)
    name: str = Field(min_length=1, max_length=200)
    opens_at: date
    closes_at: date

    @model_validator(mode="after")
    def _dates_in_order(self) -> CampaignCreate:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at: must be after the opening date")
        return self


class TransitionRequest(StrictModel):
    to_state: str = Field(min_length=1, max_length=20)
    comment: str = Field(default="", max_length=500)


class CampaignPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    year: int
    organiser: str
    name: str
    state: str
    opens_at: date
    closes_at: date
    config: dict[str, object]
