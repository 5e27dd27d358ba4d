"""Rows of the registry file and the import report."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.authorities.models import AuthorityKind

REGISTRY_COLUMNS = ("code", "siren", "name", "kind", "population", "departement", "region", "epci")


class RegistryRow(BaseModel):
    """One line of the registry CSV (the format of Etalab's découpage administratif export)."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True)

    code: str = Field(min_length=1, max_length=12, pattern=r"^[0-9A-Z]+$")
    siren: str | None = Field(default=None, pattern=r"^\d{9}$")
    name: str = Field(min_length=1, max_length=200)
    kind: AuthorityKind
    population: int = Field(ge=0)
    departement: str | None = Field(default=None, max_length=3)
    region: str | None = Field(default=None, max_length=3)
    epci: str | None = Field(default=None, pattern=r"^\d{9}$")

    @field_validator("siren", "departement", "region", "epci", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    unchanged: int
    absent_from_file: int
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


class AuthorityPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    siren: str | None
    name: str
    kind: str
    population: int
    departement: str | None
    region: str | None
    parent_code: str | None
