"""The registry's domain answers: typed champion, history and audit rows, and its errors."""

from __future__ import annotations

import pytest

from ia_continu.errors import NothingToRollBack, UnknownVersion
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.learn.datasets import generate_dataset
from ia_continu.learn.tracking import mlflow_client
from ia_continu.learn.training import retrain
from ia_continu.store.engine import session_scope
from ia_continu.vocab import ChampionAction, ModelEventKind


@pytest.fixture
def two_versions(engine, settings):
    with session_scope(engine) as s:
        generate_dataset(s, get_family(settings.family), 300, drift=False, seed=1)
    retrain(settings, engine)
    retrain(settings, engine, force=True)
    return engine, settings


def test_champion_promote_rollback_and_their_records(two_versions):
    engine, settings = two_versions
    with session_scope(engine) as s:
        champion = registry.champion(s, settings)
    assert (champion.champion_version, champion.previous_version) == ("2", "1")

    same = registry.promote(engine, settings, "2", reason="again")
    assert not same.changed and same.champion_version == "2"
    back = registry.rollback(engine, settings, reason="undo")
    assert back.changed and (back.champion_version, back.previous_version) == ("1", None)

    with session_scope(engine) as s:
        history = registry.champion_history(s, settings.family)
        events = registry.model_events(s, settings.family, limit=2)
    assert [h.action for h in history] == [
        ChampionAction.rollback,
        ChampionAction.promote,
        ChampionAction.promote,
    ]
    assert history[0].previous_version == "2" and history[0].reason == "undo"
    assert [e.event for e in events] == [ModelEventKind.rollback, ModelEventKind.promote]
    assert events[0].version == "1" and events[0].previous_version == "2"


def test_versions_are_listed_with_their_runs(two_versions):
    _, settings = two_versions
    versions = registry.list_versions(settings)
    assert [v.version for v in versions] == ["2", "1"]
    assert versions[0].aliases == ["champion"] and versions[1].aliases == []
    assert versions[0].run_name and versions[0].run_name.startswith("retrain_")
    assert set(versions[0].metrics) >= {"accuracy"} and versions[0].params["family"] == (
        settings.family
    )
    assert versions[0].created_at >= versions[1].created_at


@pytest.mark.parametrize("version", ["abc", "1.0", "-1"])
def test_promote_a_version_that_is_not_a_number(two_versions, version):
    engine, settings = two_versions
    with pytest.raises(UnknownVersion, match="versions are numbers"):
        registry.promote(engine, settings, version, reason="x")


def test_promote_unknown_and_rollback_with_nothing_before(engine, settings):
    with pytest.raises(UnknownVersion, match="42"):
        registry.promote(engine, settings, "42", reason="x")
    with pytest.raises(NothingToRollBack):
        registry.rollback(engine, settings, reason="x")


def test_registered_version_points_at_its_logged_model(two_versions):
    _, settings = two_versions
    client = mlflow_client(settings)
    mv = client.get_model_version(settings.registered_model_name, "1")
    run = client.get_run(mv.run_id)
    (output,) = run.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert mv.source == model.artifact_location
    assert client.get_model_version_download_uri(settings.registered_model_name, "1") == (
        model.artifact_location
    )
    assert model.status == "READY" and model.name == "model"
    assert '"version": 1' in model.tags["mlflow.modelVersions"]
    assert run.info.status == "FINISHED"
    assert run.data.tags["ia_continu.decision"] == "promoted"
    assert run.data.tags["mlflow.runName"] == run.info.run_name
