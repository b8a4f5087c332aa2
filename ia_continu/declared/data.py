"""Where a declared model's training rows come from when the user has none yet.

- **Simulators** (``simulator = { name = "delay", drift = 0.5 }``): built-in generators of a
  synthetic world. ``classification`` and ``delay`` reuse the Python families' worlds, so a
  declared model and a family train on the same data; ``bike_traffic`` is new. As in the
  families, drift changes what the sensors *report* while the outcome still follows the true
  world, so a model trained before the shift really gets worse.
- **Bundled datasets** (``dataset = "sklearn:iris"``): the small sets that ship inside
  scikit-learn's wheel (nothing is downloaded). Columns map to the declared features by
  position; class labels are the dataset's target names or its integer codes.
- :func:`random_frame`: rows drawn uniformly inside each feature's declared domain, for
  checks that need valid inputs of any declaration (ONNX verification, tests).

Every source returns raw values as a user would send them (category *values*, not codes) in
a pandas DataFrame, so training data goes through the same validation as requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from ia_continu.declared.schema import Declaration

# pandas is imported by the functions that build frames: checking a declaration's source at
# start (SIMULATORS, DATASETS) must not load it in an API process that serves without it.
Sample = Callable[[int, np.random.Generator, float], "tuple[pd.DataFrame, np.ndarray]"]


@dataclass(frozen=True, slots=True)
class SimulatorSpec:
    name: str
    features: tuple[str, ...]
    tasks: tuple[str, ...]
    sample: Sample


def _classification(n: int, rng: np.random.Generator, drift: float) -> tuple[pd.DataFrame, Any]:
    import pandas as pd

    from ia_continu.families import get_family

    X, y = get_family("classification").sample(n, rng=rng, drift=drift)
    return pd.DataFrame(X, columns=["feature1", "feature2"]), y.astype(np.int64)


def _delay(n: int, rng: np.random.Generator, drift: float) -> tuple[pd.DataFrame, Any]:
    import pandas as pd

    from ia_continu.families import get_family
    from ia_continu.families.delay import FEATURES

    X, y = get_family("delay").sample(n, rng=rng, drift=drift)
    frame = pd.DataFrame(X, columns=list(FEATURES))
    for column in ("hour", "weekday", "weather"):
        frame[column] = frame[column].astype(np.int64)
    return frame, y


BIKE_COUNTERS = ("north_bridge", "river_path", "station", "university", "park")
_BIKE_BASE = np.array([120.0, 80.0, 150.0, 90.0, 40.0])
BIKE_WEATHER = ("clear", "cloudy", "rain", "snow")
_BIKE_WEATHER_FACTOR = np.array([1.0, 0.9, 0.45, 0.2])
# Hourly shape: commuting peaks on working days, a broad afternoon on days off.
_WORKDAY = np.array(
    [.05, .02, .01, .01, .02, .1, .4, 1.2, 1.6, .9, .5, .5, .6, .6, .5, .6, 1.0, 1.6, 1.4, .8,
     .5, .35, .2, .1]
)  # fmt: skip
_DAY_OFF = np.array(
    [.1, .06, .03, .02, .02, .04, .1, .2, .35, .55, .8, .95, 1.0, 1.0, 1.0, 1.0, .95, .85, .7,
     .5, .35, .25, .18, .12]
)  # fmt: skip


def _bike_traffic(n: int, rng: np.random.Generator, drift: float) -> tuple[pd.DataFrame, Any]:
    import pandas as pd

    hour = rng.integers(0, 24, n)
    weekday = rng.integers(0, 7, n)
    holiday = (weekday < 5) & (rng.random(n) < 0.04)
    weather = rng.choice(len(BIKE_WEATHER), n, p=[0.5, 0.3, 0.15, 0.05])
    counter = rng.integers(0, len(BIKE_COUNTERS), n)
    day_off = (weekday >= 5) | holiday
    shape = np.where(day_off, _DAY_OFF[hour] * 0.8, _WORKDAY[hour])
    mean = _BIKE_BASE[counter] * shape * _BIKE_WEATHER_FACTOR[weather]
    count = rng.poisson(mean).astype(np.float64)
    # The drifted world: the weather feed reports "clear" for a share of wet hours.
    observed = weather.copy()
    misread = (weather >= 2) & (rng.random(n) < drift)
    observed[misread] = 0
    frame = pd.DataFrame(
        {
            "hour": hour,
            "weekday": weekday,
            "weather": np.array(BIKE_WEATHER, dtype=object)[observed],
            "holiday": holiday,
            "counter": np.array(BIKE_COUNTERS, dtype=object)[counter],
        }
    )
    return frame, count


SIMULATORS: dict[str, SimulatorSpec] = {
    s.name: s
    for s in (
        SimulatorSpec("classification", ("feature1", "feature2"), ("binary",), _classification),
        SimulatorSpec(
            "delay",
            ("distance_km", "hour", "weekday", "weather", "traffic"),
            ("regression",),
            _delay,
        ),
        SimulatorSpec(
            "bike_traffic",
            ("hour", "weekday", "weather", "holiday", "counter"),
            ("regression",),
            _bike_traffic,
        ),
    )
}


def simulate(
    declaration: Declaration, n: int, *, rng: np.random.Generator, drifted: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` rows of the declaration's simulator, drifted by its ``drift`` knob if asked."""
    if declaration.simulator is None:
        raise ValueError(f"{declaration.name} declares no simulator")
    spec = SIMULATORS[declaration.simulator.name]
    frame, y = spec.sample(n, rng, declaration.simulator.drift if drifted else 0.0)
    return frame[list(declaration.feature_names)], y


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    name: str
    n_features: int
    tasks: tuple[str, ...]
    target_names: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        DatasetSpec("iris", 4, ("multiclass",), ("setosa", "versicolor", "virginica")),
        DatasetSpec("wine", 13, ("multiclass",), ("class_0", "class_1", "class_2")),
        DatasetSpec("breast_cancer", 30, ("binary",), ("malignant", "benign")),
        DatasetSpec("diabetes", 10, ("regression",)),
    )
}


def load_dataset(declaration: Declaration) -> tuple[pd.DataFrame, np.ndarray]:
    """The declaration's bundled dataset, columns renamed to the declared features."""
    import pandas as pd
    import sklearn.datasets

    if declaration.dataset is None:
        raise ValueError(f"{declaration.name} declares no dataset")
    spec = DATASETS[declaration.dataset.partition(":")[2]]
    bunch = getattr(sklearn.datasets, f"load_{spec.name}")()
    frame = pd.DataFrame(np.asarray(bunch.data), columns=list(declaration.feature_names))
    y = np.asarray(bunch.target)
    if declaration.is_classifier and all(isinstance(c, str) for c in declaration.classes):
        y = np.array(spec.target_names, dtype=object)[y]
    return frame, y


def random_frame(declaration: Declaration, n: int, *, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` valid rows drawn uniformly inside each feature's declared domain."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for f in declaration.features:
        low = f.min if f.min is not None else (0.0 if f.max is None else f.max - 10.0)
        high = f.max if f.max is not None else low + 10.0
        if f.type == "number":
            columns[f.name] = rng.uniform(low, high, n)
        elif f.type == "integer":
            columns[f.name] = rng.integers(int(low), int(high) + 1, n)
        elif f.type == "boolean":
            columns[f.name] = rng.random(n) < 0.5
        else:
            values = np.empty(len(f.values or ()), dtype=object)
            values[:] = f.values or ()
            columns[f.name] = values[rng.integers(0, len(values), n)]
    return pd.DataFrame(columns)
