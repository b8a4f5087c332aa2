"""The documentation of settings cannot drift from the code: README and .env.example are
checked against the Settings object."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ia_continu.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_readme_and_env_example():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        env = "IA_CONTINU_" + name.upper()
        assert f"`{env}`" in readme, f"{env} missing from README.md"
        assert f"# {env}=" in example, f"{env} missing from .env.example"
        assert field.description, f"{name} has no description"


def test_env_example_is_what_the_generator_prints():
    out = subprocess.run(
        [sys.executable, "scripts/settings_doc.py", "env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == (ROOT / ".env.example").read_text()


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("bash scripts/run.sh") for line in head)
    assert any(line.startswith("bash scripts/test.sh") for line in head)
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
