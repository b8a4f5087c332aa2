"""A one-row call (every /predict) takes shorter paths through the predictor and the log
rows: they give exactly what the general, columnar paths give for the same row."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import numpy as np
import pytest

from ia_continu.errors import ModelFailure
from ia_continu.families.base import Scores
from ia_continu.serve.answers import Answers, Context, LogChunk, merge
from ia_continu.vocab import Arm, Decision
from tests.conftest import ADMIN, train

FF = "/api/feature-flags"
X = np.array([[0.3, -0.4]])


def _fields(answers: Answers) -> dict:
    out = {}
    for name in answers.__dataclass_fields__:
        if name in ("latency_ms", "created_at"):
            continue
        value = getattr(answers, name)
        out[name] = (value.dtype.kind, value.tolist()) if isinstance(value, np.ndarray) else value
    return out


def _both(predictor, request_id: str | None, booking_id: str | None = None):
    context = Context([request_id], [booking_id], [None])
    general = predictor._predict_rows(X, context)
    if request_id is None:  # the same id on both paths: the rollout's buckets depend on it
        context = Context([general.request_ids[0]], [booking_id], [None])
        general = predictor._predict_rows(X, context)
    one = predictor._predict_one(X, context)
    return general, one


def _set(client, path: str, payload: dict) -> None:
    r = client.post(f"{FF}/ml/{path}", json=payload, headers=ADMIN)
    assert r.status_code == 200, r.text
    client.app.state.runtime.flags.invalidate()


def test_the_one_row_predictor_answers_as_the_general_one(client):
    predictor = client.app.state.runtime.predictor
    # No model yet: the fallback, saying why.
    general, one = _both(predictor, "no-model")
    assert _fields(one) == _fields(general)
    assert one.decision.tolist() == [Decision.fallback_no_model]

    train(client)
    client.app.state.runtime.holder.refresh(force=True)
    _set(client, "config", {"shadow_rate": 0})
    for request_id in ("ml-1", None, "ml-3"):
        general, one = _both(predictor, request_id, booking_id="b-1")
        assert _fields(one) == _fields(general)
        assert one.decision.tolist() == [Decision.ml] and one.probability is not None

    _set(client, "percentage", {"percentage": 40})
    decisions = set()
    for i in range(40):
        general, one = _both(predictor, f"share-{i}")
        assert _fields(one) == _fields(general)
        decisions.add(one.decision[0])
    assert decisions == {Decision.ml, Decision.fallback_share}

    _set(client, "disable", {})
    general, one = _both(predictor, "off")
    assert _fields(one) == _fields(general)
    assert one.decision.tolist() == [Decision.fallback_disabled]

    # A shadowed row takes the general path from the one-row entry too: both answers kept.
    _set(client, "enable", {"percentage": 100})
    _set(client, "config", {"shadow_rate": 1})
    general, one = _both(predictor, "shadowed")
    assert _fields(one) == _fields(general)
    assert one.ml_prediction is not None and one.fallback_prediction is not None


def test_a_failing_model_falls_back_or_fails_alike_on_both_paths(trained_client):
    client = trained_client
    _set(client, "config", {"shadow_rate": 0})
    holder = client.app.state.runtime.holder

    def broken(X):  # a fault we cannot cause for real: the served model's scorer raises
        raise RuntimeError("injected model failure")

    holder.current = dataclasses.replace(holder.current, score=broken)
    predictor = client.app.state.runtime.predictor
    general, one = _both(predictor, "broken")
    assert _fields(one) == _fields(general)
    assert one.decision.tolist() == [Decision.fallback_error]

    _set(client, "config", {"fallback_on_error": False})
    holder.current = dataclasses.replace(holder.current, score=broken)
    context = Context(["strict"], [None], [None])
    with pytest.raises(ModelFailure, match="injected") as general_error:
        predictor._predict_rows(X, context)
    with pytest.raises(ModelFailure, match="injected") as one_error:
        predictor._predict_one(X, context)
    assert str(one_error.value) == str(general_error.value)


def _answers(*, use_ml: bool, shadow: bool, **scored) -> Answers:
    ml = Scores(
        prediction=np.array([1.0]),
        confidence=np.array([0.8765432198]),
        risk_level=scored.get("risk_level"),
        contributing_factors=scored.get("factors"),
        extra={"probability": np.array([0.8765432198])},
    )
    fallback = Scores(prediction=np.array([0.0]), confidence=np.array([0.6]))
    rows = np.array([True])
    return merge(
        request_ids=["r-1"],
        decision=np.array([Decision.ml if use_ml else Decision.fallback_share], dtype=object),
        use_ml=np.array([use_ml]),
        ml=ml if (use_ml or shadow) else None,
        ml_rows=rows,
        fallback=fallback if (not use_ml or shadow) else None,
        fallback_rows=rows,
        model_version="3",
        created_at=datetime(2026, 1, 1, 12, 0, 0, 123456),
    )


CASES = {
    "ml": _answers(use_ml=True, shadow=False),
    "ml with factors and risk": _answers(
        use_ml=True, shadow=False, risk_level=["high"], factors=[{"a": 0.25, "b": -1.5}]
    ),
    "fallback": _answers(use_ml=False, shadow=False),
    "ml, shadowed by the fallback": _answers(use_ml=True, shadow=True),
    "fallback, shadowed by ml": _answers(use_ml=False, shadow=True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("context", [Context(), Context(["r-1"], ["b-7"], ["d-2"])])
def test_a_one_row_log_row_is_the_columnar_row(case, context):
    answers = dataclasses.replace(CASES[case], latency_ms=0.25)
    chunk = LogChunk("classification", X, context, answers, 75.0, schema_id=4)
    (general,) = chunk._rows_from_columns()
    one = chunk._one_row()
    # The confidence as the client was answered (Answers.row rounds it so), where the
    # columnar path rounds with numpy: equal to the last digit kept.
    assert one.confidence == round(float(answers.confidence[0]), 6)
    assert one.confidence == pytest.approx(general.confidence, abs=1e-12)
    assert one._replace(confidence=None) == general._replace(confidence=None)
    assert chunk.rows() == [one]


def test_a_one_row_log_row_carries_the_challenger_arm():
    answers = dataclasses.replace(CASES["ml"], latency_ms=0.1)
    answers.arm = [Arm.challenger]
    answers.challenger_version = "4"
    answers.by_challenger = np.array([True])
    answers.challenger_prediction = np.array([np.nan])
    chunk = LogChunk("classification", X, Context(), answers, 100.0)
    (general,) = chunk._rows_from_columns()
    one = chunk._one_row()
    assert one._replace(confidence=None) == general._replace(confidence=None)
    assert (one.arm, one.challenger_version, one.model_version) == (Arm.challenger, "4", "4")


@pytest.mark.parametrize(
    "row",
    [
        [0.3, -0.4],
        [1e-05, 1e16, -0.0, 0.1, 5e-324, 1.7976931348623157e308, 123456789.125],
        [],
    ],
)
def test_a_one_row_log_row_stores_the_features_as_json_dumps_does(row):
    from ia_continu.serve.answers import _row_json

    X = np.array([row], dtype=float).reshape(1, len(row))
    assert _row_json(X) == json.dumps(X[0].tolist())
    ints = np.array([[1, 2, 3]])
    assert _row_json(ints) == json.dumps([1, 2, 3])


def test_the_delay_family_checks_and_featurizes_one_row_as_it_does_many():
    from ia_continu.errors import InvalidFeatures
    from ia_continu.families.delay import DelayFamily, featurize

    family = DelayFamily.__new__(DelayFamily)
    rng = np.random.default_rng(7)
    # Valid rows and rows breaking each rule (and several at once), edges included.
    values = [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [1000.0, 23.0, 6.0, 2.0, 1.0],
        [12.5, 8.0, 2.0, 1.0, 0.4],
        [12.5, 17.0, 5.0, 2.0, 0.9],
        [-0.1, 8.0, 2.0, 1.0, 0.4],
        [1000.5, 8.5, 7.0, 3.0, 1.5],
        [5.0, -1.0, -1.0, 0.5, -0.2],
        [5.0, 22.0, 1.0, 1.0, 1.0],
    ]
    for _ in range(300):
        values.append(
            [
                rng.uniform(-10, 1100),
                rng.choice([rng.integers(-1, 25), rng.uniform(0, 23)]),
                rng.integers(-1, 8),
                rng.choice([0, 1, 2, 3, 1.5]),
                rng.uniform(-0.2, 1.2),
            ]
        )
    for row in values:
        one = np.array([row], dtype=float)
        many = np.array([row, row], dtype=float)  # the same row through the matrix path
        errors = []
        for X in (one, many):
            try:
                family.validate(X)
                errors.append(None)
            except InvalidFeatures as exc:
                errors.append(str(exc))
        assert errors[0] == errors[1], row
        assert featurize(one).tolist() == featurize(many)[:1].tolist(), row
        assert featurize(one).dtype == featurize(many).dtype
