"""The champion's recent windows as the sustained-degradation rule reads them, on SQLite and
PostgreSQL: realised figures of the rows the champion answered, and estimated ones (CBPE)
where the outcomes have not arrived yet."""

from __future__ import annotations

import numpy as np
from sqlalchemy import update

from ia_continu.decide import decide_retrain
from ia_continu.families import get_family
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog, utcnow
from ia_continu.watch.degradation import recent_windows, window_bounds
from ia_continu.watch.quality import Figures
from tests.watch.test_estimates import post_outcomes, serve, train


def spread(engine, settings, ids_per_window: list[list[str]]) -> None:
    """Place each group of rows in the middle of its window (oldest first)."""
    for (start, end), ids in zip(window_bounds(settings, utcnow()), ids_per_window, strict=True):
        with session_scope(engine) as session:
            session.execute(
                update(PredictionLog)
                .where(PredictionLog.request_id.in_(ids))
                .values(created_at=start + (end - start) / 2)
            )


def test_windows_are_judged_on_estimates_while_outcomes_are_missing(client, settings):
    family = get_family("classification")
    assert train(client, 5000, seed=1)["model_version"] == "1"
    rng = np.random.default_rng(7)
    groups, answers = [], []
    for i in range(settings.degradation_windows):
        X, y = family.sample(400, rng=rng)
        ids, predictions = serve(client, X, f"w{i}")
        groups.append(ids)
        answers.append((predictions, y))
    engine = client.app.state.runtime.engine
    spread(engine, settings, groups)
    # The oldest window's outcomes arrived; the two newer ones still wait.
    post_outcomes(client, groups[0], answers[0][1].tolist())

    with session_scope(engine) as session:
        windows = recent_windows(session, settings, family, "1")
    assert [w.realised.count for w in windows] == [400, 400, 400]
    assert [w.realised.labeled_count for w in windows] == [400, 0, 0]
    truth = float(np.mean(answers[0][0] == answers[0][1]))
    assert windows[0].realised.accuracy_rate == round(truth, 6)
    assert windows[0].estimated is None  # enough outcomes: not estimated at all
    for (predictions, y), w in zip(answers[1:], windows[1:], strict=True):
        assert w.estimated is not None and w.estimated.accuracy_rate is not None
        assert abs(w.estimated.accuracy_rate - float(np.mean(predictions == y))) <= 0.05

    rules = family.rules
    good = decide_retrain(
        drift=False, metrics=Figures(), settings=settings, rules=rules, windows=windows
    )
    assert not good.retrain
    assert [w["source"] for w in good.checks["windows"]] == ["realised", "estimated", "estimated"]
    # The same windows against a limit above what the model does: bad in each, one of them
    # realised and two estimated.
    strict = settings.model_copy(update={"accuracy_threshold": 0.97})
    bad = decide_retrain(
        drift=False, metrics=Figures(), settings=strict, rules=rules, windows=windows
    )
    assert bad.retrain and bad.sustained
    assert bad.reason.startswith("sustained degradation over 3 windows without input drift")
    assert bad.reason.count("(estimated)") == 2


def test_only_the_champion_s_rows_count(client, settings):
    family = get_family("classification")
    train(client, 2000, seed=1)
    X, y = family.sample(300, rng=np.random.default_rng(3))
    ids, _ = serve(client, X, "v1")
    post_outcomes(client, ids, y.tolist())
    engine = client.app.state.runtime.engine
    spread(engine, settings, [[], [], ids])
    with session_scope(engine) as session:
        mine = recent_windows(session, settings, family, "1")
        other = recent_windows(session, settings, family, "2")
        none = recent_windows(session, settings, family, None)
    assert [w.realised.labeled_count for w in mine] == [0, 0, 300]
    assert [w.realised.count for w in other] == [0, 0, 0]
    assert all(w.estimated is None for w in other)  # version 2 answered nothing
    assert none == []
