"""How close the performance estimates come to the realised metric on the simulators, and
what estimating a window costs.

For each family and seed: train on the simulator, fit the estimator on a holdout, then score
three kinds of traffic and compare estimate and truth: clean; covariate shift (the inputs
move, the outcome still follows them as at training: rejection sampling from the clean
world, as tests/watch/test_estimates.py draws it); the families' sensor drift (the observed
features move, the outcome follows the true ones). Then ``estimate_window`` over rows in a
SQLite log, timed.

    .venv/bin/python -m bench.estimates [--holdout 1000] [--rows 3000] [--window-rows 50000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.learn.estimators import fit_estimator, save_estimator
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine, session_scope
from ia_continu.store.tables import PredictionLog, utcnow
from ia_continu.watch.estimates import estimate_window
from tests.watch.test_estimates import covariate_shifted


def trained(family: ModelFamily, holdout: int, seed: int) -> tuple[Any, Any]:
    X, y = family.sample(holdout * 5, rng=np.random.default_rng(seed))
    pipeline = family.build_pipeline().fit(X[holdout:], y[holdout:])
    family.after_fit(pipeline, y[:holdout], family.predict_values(pipeline, X[:holdout]))
    return pipeline, fit_estimator(family, pipeline, X[:holdout], y[:holdout])


def accuracy(holdout: int, rows: int) -> None:
    print(f"estimate vs realised ({holdout}-row holdout, {rows} rows of traffic)")
    for name in ("classification", "delay"):
        family = get_family(name)
        for seed in (1, 2, 3):
            pipeline, est = trained(family, holdout, seed)
            score = family.compile_scorer(pipeline)
            for kind in ("clean", "covariate", "sensor"):
                if kind == "clean":
                    X, y = family.sample(rows, rng=np.random.default_rng(seed + 10))
                elif kind == "covariate":
                    X, y = covariate_shifted(family, rows, seed + 20)
                else:
                    X, y = family.sample(rows, rng=np.random.default_rng(seed + 30), drift=0.5)
                s = score(X)
                real = float(est.realised(s.prediction, y).mean())
                guess = float(est.expected(s.prediction, np.round(s.confidence, 6), X).mean())
                gap = abs(guess - real)
                print(
                    f"  {name:14} {est.metric:8} seed {seed} {kind:9}: realised {real:.4f} "
                    f"estimated {guess:.4f}  error {gap:.4f} ({gap / real:.1%})"
                )


def window_cost(holdout: int, n: int) -> None:
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(url)
    migrate.upgrade(engine)
    print(f"estimate_window over {n} logged rows (SQLite)")
    for name in ("classification", "delay"):
        family = get_family(name)
        pipeline, est = trained(family, holdout, 1)
        with session_scope(engine) as session:
            save_estimator(session, name, "1", est)
        X, y = family.sample(n, rng=np.random.default_rng(9))
        s = family.compile_scorer(pipeline)(X)
        now = utcnow()
        rows = [
            {
                "request_id": f"{name}-{i}",
                "family": name,
                "features": X[i].round(6).tolist(),
                "prediction": float(s.prediction[i]),
                "confidence": float(s.confidence[i]),
                "model_version": "1",
                "latency_ms": 1.0,
                "decision": "ml",
                "served_by": "ml",
                "actual": float(y[i]) if i % 2 else None,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        with session_scope(engine) as session:
            for k in range(0, n, 10_000):
                session.execute(insert(PredictionLog), rows[k : k + 10_000])
        settings = Settings(family=name, database_url=url)
        for r in range(3):
            started = time.perf_counter()
            with session_scope(engine) as session:
                found = estimate_window(
                    session, settings, now - timedelta(hours=1), now + timedelta(seconds=1)
                )
            took = time.perf_counter() - started
            assert found is not None
            print(f"  {name:14} round {r}: {took:.2f} s for {found.rows} rows")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--window-rows", type=int, default=50_000)
    args = parser.parse_args()
    accuracy(args.holdout, args.rows)
    window_cost(args.holdout, args.window_rows)


if __name__ == "__main__":
    main()
