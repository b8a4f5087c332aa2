"""MLflow runs through the client: finished or failed, and logged as the fluent API logs."""

from __future__ import annotations

import pytest

from ia_continu.learn.tracking import ensure_experiment, mlflow_client, tracked_run


def test_a_run_that_raises_is_failed(settings):
    with pytest.raises(RuntimeError), tracked_run(settings, "doomed") as run:
        run.log(params={"a": 1}, metrics={"m": 0.5}, tags={"t": "x"})
        raise RuntimeError("boom")
    got = mlflow_client(settings).get_run(run.run_id)
    assert got.info.status == "FAILED" and got.info.run_name == "doomed"
    assert got.data.params == {"a": "1"} and got.data.metrics == {"m": 0.5}
    assert got.data.tags["t"] == "x" and "mlflow.user" in got.data.tags


def test_artifacts_and_experiment(settings, tmp_path):
    report = tmp_path / "report.html"
    report.write_text("<p>ok</p>")
    with tracked_run(settings, "with-artifact") as run:
        run.log_artifact(report, artifact_path="drift")
    client = mlflow_client(settings)
    assert [a.path for a in client.list_artifacts(run.run_id, "drift")] == ["drift/report.html"]
    assert client.get_run(run.run_id).info.status == "FINISHED"
    experiment = client.get_experiment(run.experiment_id)
    assert experiment.name == settings.mlflow_experiment
    assert ensure_experiment(settings) == run.experiment_id
