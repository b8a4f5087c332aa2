"""What a benchmark run reports: every figure next to its target, the serving targets in one
table, the machine it ran on, and a JSON copy in ``bench/results/``."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Report:
    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []
        self.runs: dict[str, Any] = {}

    def add(
        self,
        group: str,
        name: str,
        value: float | None,
        unit: str,
        *,
        target: str = "",
        met: bool | None = None,
        note: str = "",
        issue: str = "",
    ) -> None:
        """``issue``: this figure answers one of the serving targets (its short name), listed
        again in ``targets_table`` at the end of a run."""
        self.figures.append(
            dict(
                group=group,
                name=name,
                value=value,
                unit=unit,
                target=target,
                met=met,
                note=note,
                issue=issue,
            )
        )
        shown = "-" if value is None else f"{value:,.2f} {unit}"
        flag = "" if met is None else ("  MET" if met else "  MISSED")
        print(
            f"  [{group}] {name}: {shown}{'  target ' + target if target else ''}{flag}"
            f"{'  (' + note + ')' if note else ''}",
            flush=True,
        )

    def table(self) -> str:
        rows = [("group", "figure", "value", "target", "met")]
        for f in self.figures:
            value = "-" if f["value"] is None else f"{f['value']:,.2f} {f['unit']}".strip()
            met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
            name = f["name"] + (f"  [{f['note']}]" if f["note"] else "")
            rows.append((f["group"], name, value, f["target"], met))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for n, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def targets_table(self) -> str:
        """The serving targets alone: each with its figure, its target and yes/NO."""
        rows = [("target", "model", "figure", "wanted", "met", "how")]
        for f in self.figures:
            if not f["issue"]:
                continue
            value = "-" if f["value"] is None else f"{f['value']:,.2f} {f['unit']}".strip()
            met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
            model = f["group"].split("/", 1)[-1]
            rows.append((f["issue"], model, value, f["target"], met, f["note"]))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = []
        for n, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def write_results(kind: str, payload: dict[str, Any]) -> Path:
    """``payload`` (plus a timestamp) as ``bench/results/<kind>-<UTC stamp>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{kind}-{stamp}.json"
    path.write_text(json.dumps({"timestamp": stamp, **payload}, indent=2, default=str))
    print(f"results written to {path}")
    return path


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        wrk_version = (
            (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""
        )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
        "load_generator": wrk_version or "none (wrk missing)",
    }
