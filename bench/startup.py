"""Where an API process's start time and memory go: ``.venv/bin/python -m bench.startup``.

Trains a classification champion, then starts the app as ``bench.run`` does (uvicorn, one
worker, core 0) under ``python -X importtime`` and polls ``POST /predict`` until the first 200.
Prints the spawn-to-first-answer time, the share of it spent importing, the import time per
top-level package (self time, so every microsecond is counted once), and, in a fresh
interpreter, the resident memory each part of the serving stack adds when imported in the
order a start imports them. About a minute; the figures move with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import data, serving, starts
from bench.env import BenchEnv
from bench.report import machine, write_results

# Imported one after the other in a fresh interpreter: each line's memory is what it adds
# to everything above it. The first four are a start serving a built-in champion from its
# served form (ia_continu.serve.forms); the rest is what a start loading the champion from
# MLflow adds (a declared model, or a version with no form yet).
STAGES = [
    ("numpy", "import numpy"),
    ("FastAPI, SQLAlchemy, uvicorn", "import fastapi, sqlalchemy.orm, uvicorn"),
    ("the app (api.main)", "import api.main"),
    ("[from MLflow] scikit-learn (with scipy, pandas)", "import sklearn.pipeline, pandas"),
    ("[from MLflow] mlflow", "import mlflow, mlflow.artifacts, mlflow.sklearn"),
    ("[from MLflow] its SQL tracking store", "import mlflow.store.tracking.sqlalchemy_store"),
    ("[from MLflow] skops (the pipeline's format)", "import skops.io"),
]


def import_times(stderr: str) -> tuple[float, Counter[str]]:
    """Total import seconds and self seconds per top-level package, from -X importtime."""
    per_package: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        per_package[name.strip().split(".")[0]] += int(self_us) / 1e6
    return sum(per_package.values()), per_package


def memory_by_stage() -> list[tuple[str, float]]:
    code = (
        "import json, sys\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "out = [('the interpreter', rss())]\n"
        f"for label, statement in {STAGES!r}:\n"
        "    exec(statement)\n"
        "    out.append((label, rss()))\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=serving.ROOT
    )
    return [(label, mb) for label, mb in json.loads(out.stdout.splitlines()[-1])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--top", type=int, default=12, help="packages listed")
    parser.add_argument("--starts", type=int, default=3, help="starts of each kind, interleaved")
    args = parser.parse_args(argv)
    env = BenchEnv.create()
    try:
        info = machine()
        settings = env.settings("startup", "classification")
        engine = data.prepare(settings)
        data.timed_retrain(settings, engine)
        logs = env.root / "logs"
        logs.mkdir()
        server_env = env.server_env(settings, PYTHONPROFILEIMPORTTIME="1")
        started = time.perf_counter()
        first = serving.first_answer(
            server_env, {"features": data.one_row("classification")}, log_dir=logs, name="start"
        )
        wall = time.perf_counter() - started
        total, per_package = import_times(Path(logs / "start.log").read_text())
        # The baseline, same run: the champion loaded from MLflow, as every start did before
        # served forms.
        lean, baseline = starts.form_and_mlflow(
            env.server_env(settings),
            engine,
            {"features": data.one_row("classification")},
            log_dir=logs,
            starts=args.starts,
        )
        engine.dispose()
        stages = memory_by_stage()
    finally:
        env.cleanup()

    print(f"\nload average {info['loadavg_at_start'][0]:.1f}")
    print(
        f"spawn to first 200 of /predict: {first['seconds']:.2f} s (under -X importtime, which "
        f"slows imports a little); imports {total:.2f} s of it; RSS then {first['rss_mb']:.0f} MB"
    )
    starts.report("champion (no -X importtime)", lean, baseline)
    print(f"\nimport time by top-level package (self time, top {args.top}):")
    for name, seconds in per_package.most_common(args.top):
        print(f"  {seconds:6.2f} s  {100 * seconds / total:4.1f} %  {name}")
    print("\nresident memory, imported in a start's order (MB added, MB in all):")
    previous = 0.0
    for label, mb in stages:
        print(f"  {mb - previous:+7.1f}  {mb:6.1f}  {label}")
        previous = mb
    write_results(
        "startup",
        {
            "machine": info,
            "first_answer": first,
            "first_answer_from_form": lean,
            "first_answer_from_mlflow": baseline,
            "wall_s": wall,
            "import_s": total,
            "import_by_package_s": dict(per_package.most_common()),
            "rss_by_stage_mb": stages,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
