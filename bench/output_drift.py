"""What judging the model's outputs adds to a drift check, and what the sustained-degradation
windows cost.

A champion trained through the real app on a SQLite file, ``--rows`` labelled predictions
logged through ``/predict/batch``; then, in the same process and interleaved, the drift check
as it runs (inputs + predictions + outcomes) against the inputs-only check (the same code with
no output reference: what the check did before), and ``recent_windows`` (the K window queries
of the sustained rule, realised figures only since every row is labelled).

    .venv/bin/python -m bench.output_drift [--rows 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
from fastapi.testclient import TestClient

from ia_continu.config import Settings
from ia_continu.families import get_family
from ia_continu.store.engine import session_scope
from ia_continu.watch import drift
from ia_continu.watch.degradation import recent_windows

ADMIN = {"X-API-Key": "dev-insecure-key"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.output_drift", description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from api.main import create_app

    with tempfile.TemporaryDirectory() as root:
        settings = Settings(
            environment="test", data_dir=Path(root), rate_limit_enabled=False, family="delay"
        )
        with TestClient(create_app(settings)) as client:
            r = client.post("/generate", json={"samples": 5000, "seed": 1}, headers=ADMIN)
            r.raise_for_status()
            client.post("/retrain", headers=ADMIN).raise_for_status()
            family = get_family("delay")
            X, y = family.sample(args.rows, rng=np.random.default_rng(2), drift=0.5)
            ids = [f"b-{i}" for i in range(args.rows)]
            for start in range(0, args.rows, 5000):
                part = slice(start, start + 5000)
                client.post(
                    "/predict/batch", json={"features": X[part].tolist(), "request_ids": ids[part]}
                ).raise_for_status()
            assert client.app.state.runtime.writer.flush(timeout=120)
            for start in range(0, args.rows, 50_000):
                items = [
                    {"request_id": i, "actual": float(a)}
                    for i, a in zip(
                        ids[start : start + 50_000], y[start : start + 50_000], strict=True
                    )
                ]
                client.post(
                    "/api/actuals", json={"actuals": items}, headers=ADMIN
                ).raise_for_status()
            engine = client.app.state.runtime.engine
            recent = drift.RecentInputs(max_rows=args.rows)
            import evidently  # noqa: F401 - paid once per process, not per check

            both, inputs_only, windows = [], [], []
            for _ in range(args.rounds):
                started = time.perf_counter()
                full = drift.run_drift_check(settings, engine, recent)
                both.append(time.perf_counter() - started)
                with mock.patch.object(drift, "reference_outputs", lambda *a: {}):
                    started = time.perf_counter()
                    drift.run_drift_check(settings, engine, recent)
                    inputs_only.append(time.perf_counter() - started)
                started = time.perf_counter()
                with session_scope(engine) as session:
                    recent_windows(session, settings, family, full.model_version)
                windows.append(time.perf_counter() - started)

    a, b = statistics.median(both), statistics.median(inputs_only)
    print(f"drift check, {args.rows:,} labelled rows of the delay model, median of {args.rounds}:")
    print(f"  inputs only                      {b:6.2f} s")
    print(f"  inputs + predictions + outcomes  {a:6.2f} s   ratio {a / b:.2f}")
    print(
        f"  (prediction drift: {full.prediction.drifted}, {full.prediction.method}; "
        f"target drift: {full.target.drifted}, {full.target.method})"
    )
    print(f"recent_windows (3 window queries): {statistics.median(windows) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
