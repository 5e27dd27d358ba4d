"""The registry of French local authorities (communes, EPCI, départements, régions)."""

from __future__ import annotations

from enum import StrEnum

from sqlmodel import Field, SQLModel


class AuthorityKind(StrEnum):
    commune = "commune"
    epci_cc = "epci-cc"
    epci_ca = "epci-ca"
    epci_cu = "epci-cu"
    epci_metro = "epci-metro"
    epci_met69 = "epci-met69"
    departement = "departement"
    region = "region"


class Authority(SQLModel, table=True):
    __tablename__ = "authorities"

    # INSEE code for communes, SIREN for EPCI, "D"+code for départements, "R"+code for régions.
    code: str = Field(primary_key=True, max_length=12)
    siren: str | None = Field(default=None, max_length=9, index=True)
    name: str = Field(max_length=200)
    # Lower-case, accent-free name: the same search on SQLite and PostgreSQL.
    search_name: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=20, index=True)
    population: int = Field(ge=0)
    departement: str | None = Field(default=None, max_length=3)
    region: str | None = Field(default=None, max_length=3)
    # For a commune, the SIREN (= code) of its EPCI; not a foreign key so the registry can be
    # imported in any order.
    parent_code: str | None = Field(default=None, max_length=12, index=True)
