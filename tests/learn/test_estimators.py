"""Performance estimators: the methods on known worlds, and their stored form (both DBs)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from alembic import command
from sqlalchemy import inspect

from ia_continu.families import get_family
from ia_continu.learn import estimators
from ia_continu.learn.estimators import CBPE, DLE, fit_estimator, load_estimator, save_estimator
from ia_continu.store import migrate
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import EstimatorRecord


def calibrated_world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A binary model whose P(y = 1) is exactly right: prediction, confidence, outcome."""
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(0, 1, n)
    y = (rng.uniform(0, 1, n) < p1).astype(float)
    pred = (p1 >= 0.5).astype(float)
    return pred, np.where(pred == 1, p1, 1 - p1), y


def test_cbpe_on_a_calibrated_world_expects_three_quarters():
    """E[max(p, 1 - p)] for p ~ U(0, 1) is 0.75: what the model gets right, and what CBPE
    should expect from the scores alone."""
    est = CBPE.fit(True, *calibrated_world(4000, seed=1))
    pred, conf, y = calibrated_world(20000, seed=2)
    expected = est.expected(pred, conf, None)
    assert expected.mean() == pytest.approx(0.75, abs=0.01)
    assert expected.mean() == pytest.approx(float(np.mean(pred == y)), abs=0.01)
    assert ((expected >= 0) & (expected <= 1)).all()


def test_cbpe_top_label_on_an_overconfident_model():
    """A model that says 0.9 and is right 60 % of the time: calibrated, it is expected 0.6."""
    rng = np.random.default_rng(3)
    n = 3000
    pred = rng.integers(0, 3, n).astype(float)
    y = np.where(rng.uniform(0, 1, n) < 0.6, pred, (pred + 1) % 3)
    est = CBPE.fit(False, pred, np.full(n, 0.9), y)
    assert est.calibrates == "confidence"
    assert est.expected(pred, np.full(n, 0.9), None).mean() == pytest.approx(np.mean(pred == y))


def test_dle_follows_errors_that_grow_with_a_feature():
    """Errors twice as large where x > 0: more such rows, a larger expected MAE."""
    rng = np.random.default_rng(4)
    X = rng.normal(0, 1, (2000, 2))
    pred = X[:, 0] * 3
    y = pred + rng.normal(0, 1, 2000) * np.where(X[:, 1] > 0, 2.0, 1.0)
    est = DLE.fit(["a", "b"], X, pred, y)
    X2 = np.column_stack([rng.normal(0, 1, 4000), rng.normal(1.0, 1, 4000)])  # mostly x > 0
    pred2 = X2[:, 0] * 3
    y2 = pred2 + rng.normal(0, 1, 4000) * np.where(X2[:, 1] > 0, 2.0, 1.0)
    real = float(np.mean(np.abs(y2 - pred2)))
    assert real > est.holdout["realised"] * 1.2  # the shift really raised the error
    assert est.expected(pred2, np.ones(4000), X2).mean() == pytest.approx(real, rel=0.1)


def test_too_small_a_holdout_gives_no_estimator():
    family = get_family("classification")
    X, y = family.sample(200, rng=np.random.default_rng(1))
    pipeline = family.build_pipeline().fit(X, y)
    assert fit_estimator(family, pipeline, X[:10], y[:10]) is None
    assert fit_estimator(family, pipeline, X[:50], y[:50]) is not None


@pytest.mark.parametrize("name", ["classification", "delay"])
def test_stored_and_loaded_estimators_answer_alike(engine, name):
    family = get_family(name)
    X, y = family.sample(1500, rng=np.random.default_rng(2))
    pipeline = family.build_pipeline().fit(X[:1000], y[:1000])
    family.after_fit(pipeline, y[1000:], family.predict_values(pipeline, X[1000:]))
    est = fit_estimator(family, pipeline, X[1000:], y[1000:])
    assert est is not None and est.holdout["rows"] == 500
    with session_scope(engine) as session:
        save_estimator(session, name, "7", est)
        save_estimator(session, name, "7", est)  # a reused version number replaces it
    estimators._cache.clear()
    with session_scope(engine) as session:
        assert session.query(EstimatorRecord).count() == 1
        loaded = load_estimator(session, name, "7")
        assert load_estimator(session, name, "8") is None
    assert loaded is not None and type(loaded) is type(est) and loaded.holdout == est.holdout
    scores = family.compile_scorer(pipeline)(X[:300])
    np.testing.assert_allclose(
        loaded.expected(scores.prediction, scores.confidence, X[:300]),
        est.expected(scores.prediction, scores.confidence, X[:300]),
    )


def test_a_stored_model_with_other_types_is_refused(engine, caplog):
    """The DLE bytes are loaded with one allow-listed type only: a record whose model holds
    anything else (here our own feature function, which skops flags) is not loaded."""
    import skops.io

    family = get_family("delay")
    X, y = family.sample(300, rng=np.random.default_rng(5))
    pipeline = family.build_pipeline().fit(X, y)
    with session_scope(engine) as session:
        session.add(
            EstimatorRecord(
                family="delay",
                version="1",
                method="dle",
                metric="mae",
                params={"features": list(family.feature_names)},
                model=skops.io.dumps(pipeline),
            )
        )
    estimators._cache.clear()
    with caplog.at_level(logging.WARNING), session_scope(engine) as session:
        assert load_estimator(session, "delay", "1") is None
    assert "featurize" in caplog.text


def test_migration_0005_goes_down_and_up_again(engine):
    cfg = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0004")
    tables = set(inspect(engine).get_table_names())
    assert not {"performance_estimators", "performance_estimates"} & tables
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"performance_estimators", "performance_estimates"} <= tables
