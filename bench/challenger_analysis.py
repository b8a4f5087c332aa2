"""The live challenger analysis: how often its verdicts are wrong, and what a comparison costs.

1. Error rates of the verdict rule on simulated arms (pure statistics, no database): with
   equal arms, how often a challenger is advanced (should be about alpha: an advance with a
   zero margin needs a significant gain) or aborted (about alpha); with a better or worse
   challenger, how often the right verdict comes (power), for each design and a few sizes.
2. ``compare`` timed on a SQLite log holding ``--rows`` rows of one arm's window (canary and
   shadow), on this machine.

    .venv/bin/python -m bench.challenger_analysis [--repeats 2000] [--rows 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta

import numpy as np
from sqlalchemy import insert

from ia_continu.challenge import analysis, stats
from ia_continu.config import Settings
from ia_continu.serve.bucketing import in_challenger_sample
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine, session_scope
from ia_continu.store.tables import ChallengerArm, PredictionLog, utcnow
from ia_continu.vocab import Arm, ArmMode, ArmStatus, Decision, ServedBy

ALPHA = 0.05


def verdict(out: stats.TestOutcome) -> str:
    if out.p_worse < ALPHA:
        return "abort"
    return "advance" if out.p_not_worse < ALPHA else "hold"


def rates(repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"verdicts over {repeats} simulated arms (alpha {ALPHA}, margin 0)")
    print(
        f"{'design':<28}{'n/arm':>7}{'champion':>10}{'challenger':>11}"
        f"{'advance':>9}{'hold':>7}{'abort':>7}"
    )
    for n in (200, 1000):
        for p0, p1 in ((0.8, 0.8), (0.8, 0.85), (0.8, 0.75)):
            counts = {
                "canary z-test": dict.fromkeys(("advance", "hold", "abort"), 0),
                "shadow McNemar": dict.fromkeys(("advance", "hold", "abort"), 0),
            }
            for _ in range(repeats):
                k1, k0 = rng.binomial(n, p1), rng.binomial(n, p0)
                counts["canary z-test"][
                    verdict(stats.two_proportions(int(k1), n, int(k0), n, margin=0.0, alpha=ALPHA))
                ] += 1
                # Paired rows: the two models disagree on few rows (5 % where only the
                # worse one is right), the gap on the others.
                low = 0.05
                pb, pc = (low + p1 - p0, low) if p1 >= p0 else (low, low + p0 - p1)
                _, b, c, _ = rng.multinomial(n, [p0 - pc, pb, pc, 1 - p0 - pb])
                counts["shadow McNemar"][
                    verdict(stats.mcnemar(int(b), int(c), n, margin=0.0, alpha=ALPHA))
                ] += 1
            for design, got in counts.items():
                share = {k: v / repeats for k, v in got.items()}
                print(
                    f"{design:<28}{n:>7}{p0:>10.2f}{p1:>11.2f}"
                    f"{share['advance']:>9.3f}{share['hold']:>7.3f}{share['abort']:>7.3f}"
                )


def timing(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            environment="test",
            database_url=f"sqlite:///{tmp}/bench.db",
            challenger_policy="canary",
            challenger_min_labelled=100,
            challenger_min_step_minutes=0,
        )
        engine = make_engine(settings.database_url)
        migrate.upgrade(engine)
        rng = np.random.default_rng(1)
        for mode in (ArmMode.canary, ArmMode.shadow):
            with session_scope(engine) as s:
                s.query(ChallengerArm).delete()
                s.query(PredictionLog).delete()
                now = utcnow()
                arm = ChallengerArm(
                    family="classification",
                    version="2",
                    champion_version="1",
                    policy=str(mode),
                    mode=mode,
                    step=0 if mode == ArmMode.canary else -1,
                    percentage=50.0 if mode == ArmMode.canary else 0.0,
                    shadow_rate=0.5,
                    status=ArmStatus.active,
                    started_at=now - timedelta(hours=2),
                    step_started_at=now - timedelta(hours=2),
                )
                s.add(arm)
            actual = rng.integers(0, 2, rows).astype(float)
            pred = np.where(rng.random(rows) < 0.8, actual, 1 - actual)
            other = np.where(rng.random(rows) < 0.82, actual, 1 - actual)
            created = now - timedelta(hours=1)
            batch = []
            for i in range(rows):
                rid = f"r{i}"
                challenger_row = mode == ArmMode.canary and i % 2 == 1
                shadowed = mode == ArmMode.shadow and in_challenger_sample(rid, 0.5)
                batch.append(
                    {
                        "request_id": rid,
                        "family": "classification",
                        "features": [0.0, 0.0],
                        "prediction": float(other[i] if challenger_row else pred[i]),
                        "confidence": 0.9,
                        "model_version": "2" if challenger_row else "1",
                        "latency_ms": 1.0,
                        "decision": Decision.ml,
                        "served_by": ServedBy.ml,
                        "arm": Arm.challenger if challenger_row else Arm.champion,
                        "challenger_version": "2",
                        "challenger_prediction": float(other[i]) if shadowed else None,
                        "actual": float(actual[i]),
                        "created_at": created,
                    }
                )
            with session_scope(engine) as s:
                s.execute(insert(PredictionLog), batch)
            with session_scope(engine) as s:
                arm = s.query(ChallengerArm).one()
                started = time.perf_counter()
                out = analysis.compare(s, settings, arm)
                took = time.perf_counter() - started
            print(
                f"compare, {mode}, {rows} rows in the window: {took:.2f} s "
                f"({out.test}, verdict {out.verdict})"
            )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rates(args.repeats)
    timing(args.rows)


if __name__ == "__main__":
    main()
