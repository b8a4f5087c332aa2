"""What recording one /predict call in Prometheus costs: the labelled series looked up per
call with ``labels()`` and counted through ``np.unique`` (as before), against the cached
children and the one-row path of ``api.metrics._observe``, in the same process.

    .venv/bin/python -m bench.metrics_observe
"""

from __future__ import annotations

import timeit

import numpy as np

from api import metrics
from ia_continu.vocab import Decision, ServedBy

ONE_ROW = np.array([Decision.ml], dtype=object)


def per_call_lookup() -> None:
    values, counts = np.unique(ONE_ROW.astype(str), return_counts=True)
    for decision, count in zip(values.tolist(), counts.tolist(), strict=True):
        served_by = ServedBy.ml if decision == Decision.ml else ServedBy.fallback
        metrics.predictions_total.labels("bench", served_by, decision).inc(count)
    metrics.prediction_latency.labels("bench").observe(0.001)


def cached() -> None:
    metrics._observe("bench", ONE_ROW, 0.001)


def main(rounds: int = 3, number: int = 20_000) -> None:
    for r in range(rounds):  # interleaved, so both see the same machine
        before = min(timeit.repeat(per_call_lookup, number=number, repeat=5)) / number * 1e6
        after = min(timeit.repeat(cached, number=number, repeat=5)) / number * 1e6
        print(
            f"round {r}: labels() per call {before:.1f} µs, cached {after:.1f} µs, "
            f"{before / after:.1f}x"
        )


if __name__ == "__main__":
    main()
