"""Print the settings as a Markdown table (README) or as .env.example, from the Settings
object itself, so the documentation cannot drift from the code.

    .venv/bin/python scripts/settings_doc.py markdown
    .venv/bin/python scripts/settings_doc.py env > .env.example
"""

from __future__ import annotations

import json
import sys

from pydantic import SecretStr

from ia_continu.config import Settings

PREFIX = Settings.model_config["env_prefix"]


def rows() -> list[tuple[str, str, str]]:
    out = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr) or default is None:
            shown = ""
        elif hasattr(default, "value"):
            shown = str(default.value)
        elif isinstance(default, tuple | list):  # what the variable takes: a JSON list
            shown = json.dumps([int(v) if float(v).is_integer() else v for v in default])
        else:
            shown = str(default)
        out.append((PREFIX + name.upper(), shown, field.description or ""))
    return out


def markdown() -> str:
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for env, default, doc in rows():
        lines.append(
            f"| `{env}` | `{default}` | {doc.replace('|', '/')} |"
            if default
            else f"| `{env}` | | {doc.replace('|', '/')} |"
        )
    return "\n".join(lines)


def env_example() -> str:
    lines = [
        "# ia-continu settings: every IA_CONTINU_* variable, with its default.",
        "# Copy to .env (read from the working directory) and uncomment what you change.",
        "",
    ]
    for env, default, doc in rows():
        lines.append(f"# {doc}")
        lines.append(f"# {env}={default}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown() if sys.argv[1:] == ["markdown"] else env_example())
