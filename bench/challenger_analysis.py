"""The live challenger analysis: how often its verdicts are wrong, and what a comparison costs.

1. Error rates of the verdict rule on simulated arms (pure statistics, no database), the
   analysis' (the always-valid sequential p-value) beside the fixed-sample one-sided tests:
   with equal arms, how often a challenger is advanced or aborted (at most alpha); with a
   better or worse challenger, how often the right verdict comes (power), for each design
   and two sizes, on one look.
2. Repeated looks, as the flow judges a step again while outcomes accumulate: how often a
   step ends advanced or aborted, under each rule.
3. ``compare`` timed on a SQLite log holding ``--rows`` rows of one arm's window (canary and
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


MIN_LABELLED = 200


def verdict(out: stats.TestOutcome, n: int, sequential: bool = True) -> str:
    """The analysis' rule (the always-valid p-value), or the fixed-sample one beside it."""
    if sequential:
        p = out.sequential_p(analysis.sequential_tau(out, n, MIN_LABELLED))
        if p >= ALPHA:
            return "hold"
        return "advance" if out.gain > -out.margin else "abort"
    if out.p_worse < ALPHA:
        return "abort"
    return "advance" if out.p_not_worse < ALPHA else "hold"


def rates(repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"verdicts over {repeats} simulated arms, one look (alpha {ALPHA}, margin 0;")
    print(f"sequential: the analysis' rule, min_labelled {MIN_LABELLED}; fixed: one-sided tests)")
    print(
        f"{'design':<16}{'rule':<12}{'n/arm':>6}{'champion':>9}{'challenger':>11}"
        f"{'advance':>9}{'hold':>7}{'abort':>7}"
    )
    for n in (200, 1000):
        for p0, p1 in ((0.8, 0.8), (0.8, 0.85), (0.8, 0.75)):
            keys = [(d, r) for d in ("canary z", "shadow McNemar") for r in ("sequential", "fixed")]
            counts = {k: dict.fromkeys(("advance", "hold", "abort"), 0) for k in keys}
            for _ in range(repeats):
                k1, k0 = rng.binomial(n, p1), rng.binomial(n, p0)
                z = stats.two_proportions(int(k1), n, int(k0), n, margin=0.0, alpha=ALPHA)
                # Paired rows: the two models disagree on few rows (5 % where only the
                # worse one is right), the gap on the others.
                low = 0.05
                pb, pc = (low + p1 - p0, low) if p1 >= p0 else (low, low + p0 - p1)
                _, b, c, _ = rng.multinomial(n, [p0 - pc, pb, pc, 1 - p0 - pb])
                mc = stats.mcnemar(int(b), int(c), n, margin=0.0, alpha=ALPHA)
                for (design, rule), got in counts.items():
                    out = z if design == "canary z" else mc
                    got[verdict(out, n, rule == "sequential")] += 1
            for (design, rule), got in counts.items():
                share = {k: v / repeats for k, v in got.items()}
                print(
                    f"{design:<16}{rule:<12}{n:>6}{p0:>9.2f}{p1:>11.2f}"
                    f"{share['advance']:>9.3f}{share['hold']:>7.3f}{share['abort']:>7.3f}"
                )


def looks(repeats: int) -> None:
    """Canary arms judged after every 50 new outcomes per arm from 200 to 2,000 (37 looks),
    stopping at the first verdict: how often a step ends advanced or aborted."""
    rng = np.random.default_rng(2)
    print("37 looks from 200 to 2,000 outcomes per arm (canary z), the first verdict:")
    for p0, p1 in ((0.8, 0.8), (0.8, 0.83), (0.8, 0.77)):
        for sequential in (True, False):
            ever = {"advance": 0, "abort": 0}
            for _ in range(repeats):
                r1, r0 = rng.random(2000) < p1, rng.random(2000) < p0
                for n in range(200, 2001, 50):
                    out = stats.two_proportions(
                        int(r1[:n].sum()), n, int(r0[:n].sum()), n, margin=0.0, alpha=ALPHA
                    )
                    v = verdict(out, n, sequential)
                    if v != "hold":
                        ever[v] += 1
                        break
            rule = "sequential" if sequential else "fixed"
            print(
                f"  champion {p0:.2f}, challenger {p1:.2f}, {rule:<10}: advanced "
                f"{ever['advance'] / repeats:.3f}, aborted {ever['abort'] / repeats:.3f}"
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
    looks(args.repeats)
    timing(args.rows)


if __name__ == "__main__":
    main()
