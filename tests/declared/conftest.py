"""Fixtures for the declared-model tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(file name, TOML text) -> path inside tmp_path/models."""
    folder = tmp_path / "models"
    folder.mkdir()

    def _write(filename: str, text: str) -> Path:
        path = folder / filename
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write
