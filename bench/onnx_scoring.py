"""One-row scoring latency of declared models: onnxruntime against scikit-learn.

    .venv/bin/python -m bench.onnx_scoring            # about a minute
    .venv/bin/python -m bench.onnx_scoring --quick    # fewer repeats

For each built-in declaration (the 100-tree RandomForestRegressor of ``bike_traffic`` first)
it trains on its simulator or bundled dataset, converts with :func:`to_onnx` and times, per
call on one already-encoded row: ``Pipeline.predict`` and the ONNX Runtime session (one
intra-op thread). It also times the two input representations the features layer could use
for a request (see ``ia_continu/declared/features.py``): dict → float row, and dict → one-row
DataFrame fed to the same model keyed by column names. Each figure is the median over
repeats of the mean of a timed loop. Not part of the test suite; prints figures only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ia_continu.declared import Declaration, load_declarations
from ia_continu.declared.build import build_pipeline
from ia_continu.declared.data import load_dataset, simulate
from ia_continu.declared.features import FeatureEncoder
from ia_continu.declared.onnx import to_onnx


def per_call_us(fn: Callable[[], Any], *, loops: int, repeats: int) -> float:
    fn()  # warm-up: first calls allocate and fill caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples) * 1e6


def training_data(d: Declaration) -> tuple[pd.DataFrame, np.ndarray]:
    if d.simulator is not None:
        return simulate(d, 5000, rng=np.random.default_rng(0))
    return load_dataset(d)


def by_name_pipeline(d: Declaration, fitted: Pipeline) -> Pipeline:
    """The DataFrame alternative: same estimator type, preprocessing keyed by column names."""
    numeric = [f.name for f in d.features if f.type in ("number", "integer")]
    categorical = [f.name for f in d.features if f.type == "category"]
    boolean = [f.name for f in d.features if f.type == "boolean"]
    blocks: list[tuple[str, Any, list[str]]] = [("number", StandardScaler(), numeric)]
    if categorical:
        blocks.append(("category", OneHotEncoder(handle_unknown="ignore"), categorical))
    if boolean:
        blocks.append(("boolean", "passthrough", boolean))
    from sklearn.base import clone

    return Pipeline(
        [
            ("preprocess", ColumnTransformer(blocks, sparse_threshold=0.0)),
            ("model", clone(fitted.steps[-1][1])),
        ]
    )


def measure(d: Declaration, loops: int, repeats: int) -> tuple[str, str]:
    """(latency line, request-encoding line) for one declaration."""
    enc = FeatureEncoder(d)
    frame, outcome = training_data(d)
    X, y = enc.frame(frame), enc.target(outcome)
    pipeline = build_pipeline(d).fit(X, y)
    scorer, report = to_onnx(pipeline, X[:500])
    row = X[:1]
    sk = per_call_us(lambda: pipeline.predict(row), loops=loops, repeats=repeats)
    ort = per_call_us(lambda: scorer.predict(row), loops=loops * 20, repeats=repeats)
    if report.converted:
        status = f"{report.variant}, max |diff| {report.max_abs_diff:.2g}"
    else:
        status = f"not converted: {report.reason}"
    model = pipeline.steps[-1][1]
    estimator = type(model).__name__
    if hasattr(model, "n_estimators"):
        estimator += f"({model.n_estimators})"
    latency = f"{d.name:<16}{estimator:<26}{sk:>12.0f}{ort:>11.1f}{sk / ort:>7.0f}x  {status}"

    request = enc.decode(row).to_dict("records")[0]
    as_row = per_call_us(lambda: enc.row(request), loops=loops * 20, repeats=repeats)
    as_frame = per_call_us(lambda: pd.DataFrame([request]), loops=loops * 5, repeats=repeats)
    if d.pipeline is None:
        named = by_name_pipeline(d, pipeline).fit(enc.decode(X), y)
        one = pd.DataFrame([request])
        sk_frame = per_call_us(lambda: named.predict(one), loops=loops, repeats=repeats)
        frame_note = f"{sk_frame:.0f} µs predict by column names"
    else:
        frame_note = "declared steps: no name-keyed equivalent"
    encoding = (
        f"{d.name:<16}dict→float row {as_row:6.1f} µs | dict→DataFrame {as_frame:6.1f} µs, "
        f"then {frame_note} (vs {sk:.0f} µs on the float row)"
    )
    return latency, encoding


def run(names: list[str], loops: int, repeats: int) -> None:
    declarations = load_declarations()
    print(f"{'model':<16}{'estimator':<26}{'sklearn µs':>12}{'onnxrt µs':>11}{'ratio':>8}  onnx")
    encodings = []
    for name in names:
        latency, encoding = measure(declarations[name], loops, repeats)
        print(latency, flush=True)
        encodings.append(encoding)
    print("\nrequest encoding, one row:")
    print("\n".join(encodings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops and repeats")
    parser.add_argument(
        "--models",
        default="bike_traffic,delay,classification,iris",
        help="comma-separated built-in declarations",
    )
    args = parser.parse_args()
    loops, repeats = (20, 3) if args.quick else (100, 7)
    run(args.models.split(","), loops, repeats)


if __name__ == "__main__":
    main()
