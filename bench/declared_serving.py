"""A declared model served by the API against ``mlflow models serve`` of the same version.

``.venv/bin/python -m bench.declared_serving`` trains the built-in ``bike_traffic`` model (a
RandomForestRegressor over integer, boolean and one-hot encoded category features) on 10,000
simulated rows, then serves the registered version twice, each server pinned to core 0:

- the app (default model ``classification``, ``bike_traffic`` on first request like any other
  declared model), ``POST /models/bike_traffic/predict`` with the features *by name*
  (``{"weather": "rain", ...}``): validation and encoding by the declaration, rollout,
  prediction logging and HTTP metrics on, rate limit off;
- ``mlflow models serve --env-manager local -w 1``, ``POST /invocations`` with the row already
  encoded as the pipeline's float matrix (MLflow knows nothing of the declaration).

wrk on core 1 drives 64 connections: a warm-up of each, then ``--rounds`` interleaved rounds
(app, mlflow, app, mlflow...) so both see the same moments of a shared machine. Prints the
median round's req/s and p99 of both and their ratio (target: the app at least 5x), writes a
JSON copy to ``bench/results/``. Absolute figures move with whatever else runs on the machine;
the same-run ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import time

import httpx
import numpy as np

from bench import serving
from bench.env import BenchEnv
from bench.report import Report, machine, write_results

MODEL = "bike_traffic"
ROW = {"hour": 8, "weekday": 1, "weather": "rain", "counter": "station"}


def train(env: BenchEnv, samples: int) -> tuple[object, str, list[float]]:
    """Settings of the serving process, the registered model URI, and ROW encoded."""
    from ia_continu.catalog import model_settings
    from ia_continu.families import get_family
    from ia_continu.learn.datasets import generate_dataset
    from ia_continu.learn.training import retrain
    from ia_continu.store import migrate
    from ia_continu.store.engine import make_engine, session_scope

    settings = env.settings("declared", "classification")
    view = model_settings(settings, MODEL)
    family = get_family(MODEL, view)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    with session_scope(engine) as session:
        generate_dataset(session, family, samples, drift=False, seed=7)
    started = time.perf_counter()
    result = retrain(view, engine, reason="bench")
    print(
        f"== trained {MODEL} version {result.champion_version} on {samples:,} rows in "
        f"{time.perf_counter() - started:.1f} s: {result.metrics}",
        flush=True,
    )
    engine.dispose()
    encoded = family.encode_rows([ROW])[0].astype(float).tolist()
    return settings, f"models:/{view.registered_model_name}/{result.champion_version}", encoded


def _same_answer(app_url: str, mlflow_url: str, encoded: list[float]) -> tuple[float, float]:
    """Both servers answer the same number for the row: they serve the same version."""
    ours = httpx.post(app_url, json={"features": ROW}, timeout=30).json()
    if ours.get("served_by") != "ml":
        raise RuntimeError(f"the app did not answer with the model: {ours}")
    theirs = httpx.post(mlflow_url, json={"inputs": [encoded]}, timeout=30).json()
    value = float(np.asarray(theirs["predictions"]).reshape(-1)[0])
    if abs(value - float(ours["prediction"])) > 1e-3 * max(1.0, abs(value)):
        raise RuntimeError(f"answers differ: app {ours['prediction']}, mlflow {value}")
    return float(ours["prediction"]), value


def run(
    env: BenchEnv, report: Report, *, seconds: int, warmup: int, rounds: int, samples: int
) -> dict:
    """Train, serve with both, load in interleaved rounds; adds the figures to ``report``
    (the ratio as a serving target) and returns the runs for the JSON results."""
    settings, model_uri, encoded = train(env, samples)
    logs = env.root / "logs"
    logs.mkdir(exist_ok=True)
    app: serving.Server | None = None
    ml: serving.Server | None = None
    try:
        app = serving.start_app(
            env.server_env(settings), loop="asyncio", log_dir=logs, name="app-declared"
        )
        ml = serving.start_mlflow(
            env.server_env(settings), model_uri, log_dir=logs, name="mlflow-declared"
        )
        app_url = f"{app.url}/models/{MODEL}/predict"
        answers = _same_answer(app_url, ml.url + "/invocations", encoded)
        engine = httpx.get(f"{app.url}/models/{MODEL}").json()["serving_engine"]
        print(f"== both answer {answers[0]:.3f} for {ROW}; the app scores with {engine}")
        print(f"== {rounds} interleaved rounds of {seconds} s per server", flush=True)
        runs = serving.interleaved(
            {
                "app": (app_url, {"features": ROW}),
                "mlflow_serve": (ml.url + "/invocations", {"inputs": [encoded]}),
            },
            warmup=warmup,
            rounds=rounds,
            seconds=seconds,
        )
        rss = {"app": app.rss_mb(), "mlflow_serve": ml.rss_mb()}
    finally:
        for server in (app, ml):
            if server is not None:
                server.stop()
    group = f"declared/{MODEL}"
    labels = {
        "app": f"app /models/{MODEL}/predict by name, log + rollout on ({engine})",
        "mlflow_serve": "mlflow models serve /invocations, encoded row (baseline)",
    }
    for name, label in labels.items():
        r = runs[name]
        each = ", ".join(f"{x['rps']:.0f}" for x in r["rounds"])
        note = f"p50 {r['p50_ms']:.1f} ms; rounds {each} req/s; RSS {rss[name]:.0f} MB"
        if r["non_2xx"] or r["socket_errors"]:
            note += f"; {r['non_2xx']} non-2xx, {r['socket_errors']} socket errors"
        report.add(group, f"{label}: req/s (median round)", r["rps"], "req/s", note=note)
        report.add(group, f"{label}: p99", r["p99_ms"], "ms")
    ratio = runs["app"]["rps"] / runs["mlflow_serve"]["rps"]
    per_round = ", ".join(
        f"{a['rps'] / b['rps']:.1f}"
        for a, b in zip(runs["app"]["rounds"], runs["mlflow_serve"]["rounds"], strict=True)
    )
    report.add(
        group,
        "ratio app / mlflow serve, req/s",
        ratio,
        "x",
        target=">= 5x",
        met=ratio >= 5,
        note=f"medians; per round {per_round}",
        issue="declared RandomForest req/s vs mlflow serve",
    )
    return {"model_uri": model_uri, "serving_engine": engine, "runs": runs, "rss_mb": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.declared_serving", description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="seconds per server and round")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10_000, help="training rows")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("skipped: wrk not installed (apt-get install wrk, or run scripts/bench.sh)")
        return 1

    env = BenchEnv.create(keep=args.keep)

    def cleanup() -> None:
        serving.stop_all()
        env.cleanup()

    atexit.register(cleanup)
    info = machine()
    print(
        f"declared-model serving bench on {info['nproc']} cores, {info['cpu']}; "
        f"{info['load_generator']}; load {info['loadavg_at_start']}; work folder {env.root}"
    )
    report = Report()
    result = run(
        env,
        report,
        seconds=args.seconds,
        warmup=args.warmup,
        rounds=args.rounds,
        samples=args.samples,
    )
    cleanup()
    info["loadavg_at_end"] = os.getloadavg()
    print("\n" + report.table())
    print("Shared machine: absolute figures are noisy; the same-run ratio is what counts.")
    write_results(
        "declared-serving",
        {
            "machine": info,
            "args": vars(args),
            "figures": report.figures,
            **result,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
