"""The automatic rollback on SQLite and PostgreSQL with real MLflow versions: a new champion
that does worse live than the one it replaced is rolled back under the registry lock,
audited with its numbers, once; the MLflow alias follows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ia_continu.challenge import watch
from ia_continu.learn import registry
from ia_continu.learn.tracking import mlflow_client
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ChampionHistory, ModelEvent, PredictionLog, utcnow
from ia_continu.vocab import ChampionAction, Decision, ModelEventKind, ServedBy
from tests.conftest import train


def _answered(session, version: str, n: int, right: int, minutes_ago: float) -> None:
    created = utcnow() - timedelta(minutes=minutes_ago)
    for i in range(n):
        actual = float(i % 2)
        session.add(
            PredictionLog(
                request_id=f"{version}-{i}",
                family="classification",
                features=[0.0, 0.0],
                prediction=actual if i < right else 1 - actual,
                confidence=0.9,
                model_version=version,
                latency_ms=1.0,
                decision=Decision.ml,
                served_by=ServedBy.ml,
                actual=actual,
                is_accurate=i < right,
                created_at=created,
            )
        )


def test_a_degraded_champion_is_rolled_back_once(make_client):
    client = make_client(challenger_min_labelled=100)
    runtime = client.app.state.runtime
    settings, engine = runtime.settings, runtime.engine
    first = train(client)["model_version"]
    second = train(client, seed=2, force=True)["model_version"]
    with session_scope(engine) as s:
        promotion = s.scalars(
            select(ChampionHistory).order_by(ChampionHistory.id.desc()).limit(1)
        ).one()
        assert (promotion.action, promotion.version) == (ChampionAction.promote, second)
        # The rows each champion answered: the old one before the promotion, right on 90 %,
        # the new one since, right on 55 %.
        promotion.created_at = utcnow() - timedelta(minutes=30)
        _answered(s, first, 200, 180, minutes_ago=60)
        _answered(s, second, 200, 110, minutes_ago=10)
    with session_scope(engine) as s:
        found = watch.check(s, settings)
    assert found is not None and found.verdict == "rollback", found
    assert watch.roll_back(engine, settings, found)
    with session_scope(engine) as s:
        assert registry.champion_version(s, settings.family) == first
        audit = s.scalars(
            select(ModelEvent).where(ModelEvent.event == ModelEventKind.auto_rollback)
        ).one()
        assert (audit.version, audit.previous_version) == (first, second)
        assert audit.metrics["promotion_id"] == found.promotion_id
        assert audit.metrics["new_metric"] == 0.55 and audit.metrics["previous_metric"] == 0.9
    alias = mlflow_client(settings).get_registered_model(settings.registered_model_name).aliases
    assert str(alias[registry.CHAMPION_ALIAS]) == first
    # Once: the same finding applied again changes nothing, and the watch is over.
    assert not watch.roll_back(engine, settings, found)
    with session_scope(engine) as s:
        assert watch.check(s, settings) is None
        assert registry.champion_version(s, settings.family) == first
