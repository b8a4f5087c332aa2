"""Synthetic datasets: the drift clock, storage, and loading back by id."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from ia_continu.errors import NoDatasetYet, UnknownDataset
from ia_continu.families import get_family
from ia_continu.learn.datasets import CLOCK_DRIFT, drift_for, generate_dataset, load_dataset
from ia_continu.store.engine import session_scope


@pytest.mark.parametrize(
    ("hour", "drift", "shift"),
    [
        (2, None, 0.0),
        (3, None, CLOCK_DRIFT),
        (3, False, 0.0),
        (2, True, CLOCK_DRIFT),
        (2, 1.5, 1.5),
    ],
)
def test_drift_follows_the_clock_unless_told(hour, drift, shift):
    assert drift_for(hour, drift) == shift


def test_generate_then_load(engine, settings):
    family = get_family(settings.family)
    with session_scope(engine) as s:
        with pytest.raises(NoDatasetYet):
            load_dataset(s, family)
        first = generate_dataset(s, family, 120, seed=3, now=datetime(2026, 1, 1, 3))
        generate_dataset(s, family, 150, seed=4, drift=False)
    assert first.drift and first.hour_generated == 3
    with session_scope(engine) as s:
        latest = load_dataset(s, family)
        chosen = load_dataset(s, family, first.generation_id)
        with pytest.raises(UnknownDataset):
            load_dataset(s, family, 999)
    assert latest.X.shape == (150, family.n_features) and chosen.y.shape == (120,)
    assert set(np.unique(chosen.y)) <= {0.0, 1.0}
