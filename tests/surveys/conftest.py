"""Shared fixtures for the instrument package tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import surveys
from surveys import Instrument

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def defaults() -> dict[str, Instrument]:
    return surveys.default_instruments()


@pytest.fixture(scope="session")
def kitchen_sink() -> Instrument:
    return surveys.load_instrument(FIXTURES / "kitchen-sink.yaml")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a definition file and return its path."""

    def _write(text: str, name: str = "definition.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
