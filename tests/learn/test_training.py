"""Retrain as a domain function: the result, the audit rows, the errors, and no global state."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from sqlalchemy import select

from ia_continu.errors import InvalidInput, NoDatasetYet, UnknownDataset
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.learn.datasets import generate_dataset
from ia_continu.learn.training import RetrainResult, retrain
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import DatasetSample, ModelEvent
from ia_continu.vocab import ModelEventKind


def _dataset(engine, settings, samples: int = 400, seed: int = 1) -> int:
    with session_scope(engine) as s:
        return generate_dataset(
            s, get_family(settings.family), samples, drift=False, seed=seed
        ).generation_id


def _events(engine) -> list[str]:
    with session_scope(engine) as s:
        return list(s.scalars(select(ModelEvent.event).order_by(ModelEvent.id)))


def test_retrain_sets_no_process_wide_mlflow_uri(engine, settings, tmp_path, monkeypatch):
    """Runs, versions and loads all go to the settings' store, whatever MLflow's global
    URI says, and the global URI is left as it was."""
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{elsewhere}")
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    _dataset(engine, settings)
    first = retrain(settings, engine)
    second = retrain(settings, engine)  # loads the champion to judge the challenger
    assert second.champion_metrics is not None
    registry.promote(engine, settings, first.model_version, reason="back")
    assert registry.load_pipeline(settings, first.model_version) is not None
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
    assert not Path(elsewhere).exists()


def test_result_is_one_typed_answer(engine, settings):
    _dataset(engine, settings)
    result = retrain(settings, engine, reason="test")
    assert isinstance(result, RetrainResult)
    dumped = result.model_dump()
    # accuracy stays top level for the first API's clients.
    assert dumped["accuracy"] == result.metrics["accuracy"]
    assert dumped["status"] == "promoted" and dumped["promoted"] is True
    assert "accuracy" in RetrainResult.model_json_schema(mode="serialization")["properties"]
    assert _events(engine) == [ModelEventKind.retrain, ModelEventKind.promote]


def test_delay_family_keeps_the_holdout_spread_on_the_pipeline(engine, settings_factory):
    settings = settings_factory(family="delay")
    _dataset(engine, settings, samples=600)
    result = retrain(settings, engine)
    pipeline = registry.load_pipeline(settings, result.model_version)
    assert 0 < pipeline.residual_std_ < result.metrics["rmse"] * 1.01


def test_untrainable_dataset_is_invalid_input_and_audited(engine, settings):
    gid = _dataset(engine, settings, samples=200)
    with session_scope(engine) as s:
        for row in s.scalars(select(DatasetSample).where(DatasetSample.generation_id == gid)):
            row.target = 1.0
    # UntrainableDataset (or, before the families say so, InvalidFeatures): both 422s.
    with pytest.raises(InvalidInput, match="single class"):
        retrain(settings, engine)
    assert _events(engine) == [ModelEventKind.failed]


def test_missing_data_errors(engine, settings):
    with pytest.raises(NoDatasetYet, match="POST /generate"):
        retrain(settings, engine)
    _dataset(engine, settings)
    with pytest.raises(UnknownDataset, match="999"):
        retrain(settings, engine, generation_id=999)
