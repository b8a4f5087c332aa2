"""A declared model's start from its served form against its start from MLflow, same run.

``.venv/bin/python -m bench.declared_form`` trains the built-in ``bike_traffic`` model (a
RandomForestRegressor that ONNX Runtime serves) on 10,000 simulated rows, then starts the app
with it as the default model, ``--starts`` times each way, interleaved (form, MLflow, form...):

- *from its served form*: the version's ONNX bytes and fitted numbers read from the
  database (``ia_continu.serve.forms``): no MLflow, skops, scikit-learn, scipy or pandas;
- *from MLflow* (the baseline: every declared model before it had a form): its form deleted
  before the start, so the app loads the registered pipeline (and writes the form back).

Each start is ``serving.first_answer``: spawn to the first 200 of ``POST /predict`` (core 0,
polled every 10 ms), and the process's resident memory then. Prints the medians and the
ratios of the same run; writes a JSON copy to ``bench/results/``. Absolute figures move with
the machine's load, the ratios much less.
"""

from __future__ import annotations

import argparse
import sys

from bench import starts
from bench.env import BenchEnv
from bench.report import machine, write_results

MODEL = "bike_traffic"
ROW = {"hour": 8, "weekday": 1, "weather": "rain", "counter": "station"}


def main(argv: list[str] | None = None) -> int:
    from ia_continu.catalog import model_settings
    from ia_continu.families import get_family
    from ia_continu.learn.datasets import generate_dataset
    from ia_continu.learn.training import retrain
    from ia_continu.store import migrate
    from ia_continu.store.engine import make_engine, session_scope

    parser = argparse.ArgumentParser(prog="python -m bench.declared_form", description=__doc__)
    parser.add_argument("--starts", type=int, default=3, help="starts of each kind, interleaved")
    parser.add_argument("--samples", type=int, default=10_000, help="training rows")
    args = parser.parse_args(argv)
    env = BenchEnv.create()
    try:
        info = machine()
        settings = env.settings("declared_form", MODEL)
        view = model_settings(settings, MODEL)
        engine = make_engine(settings.database_url)
        migrate.upgrade(engine)
        with session_scope(engine) as session:
            generate_dataset(session, get_family(MODEL, view), args.samples, drift=False, seed=7)
        version = retrain(view, engine, reason="bench").champion_version
        print(f"== {MODEL} version {version} trained on {args.samples:,} rows", flush=True)
        logs = env.root / "logs"
        logs.mkdir()
        lean, baseline = starts.form_and_mlflow(
            env.server_env(settings), engine, {"features": ROW}, log_dir=logs, starts=args.starts
        )
        engine.dispose()
    finally:
        env.cleanup()

    print(f"\nload average {info['loadavg_at_start'][0]:.1f}")
    starts.report(MODEL, lean, baseline)
    write_results(
        "declared_form",
        {"machine": info, "model": MODEL, "from_form": lean, "from_mlflow": baseline},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
