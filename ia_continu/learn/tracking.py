"""MLflow runs and logged models through a client on our store: no active run, no global URI.

MLflow's fluent API (``mlflow.start_run``, ``mlflow.sklearn.log_model``, loading
``models:/name/version``) reads a process-wide tracking and registry URI. Setting it on every
call made each call change what every other thread and library in the process talked to. Here
every call goes through an ``MlflowClient`` built with the settings' URI, and the model is
saved locally then uploaded, which is what ``log_model`` does inside: the runs, logged models,
registered versions and their artifacts are the same as the fluent API's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ia_continu.config import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

# MLflow otherwise tries DNS look-ups for telemetry while logging.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

MODEL_NAME = "model"  # the logged model's name inside its run, as log_model(name=...) had it
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it


def mlflow_client(settings: Settings) -> MlflowClient:
    """A client on our tracking and registry store (one URI serves both)."""
    from mlflow import MlflowClient

    return MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )


def ensure_experiment(settings: Settings, client: MlflowClient | None = None) -> str:
    """The experiment's id, created (with its artifact root) the first time.

    On a tracking server (``http(s)://``) the server's default root applies (with
    ``--serve-artifacts``, ``mlflow-artifacts:/``: artifacts go through the server over HTTP,
    so no replica needs a disk shared with it). On the embedded store it is a local folder,
    ``mlflow_artifacts_dir``.
    """
    from mlflow.exceptions import MlflowException

    client = client or mlflow_client(settings)
    exp = client.get_experiment_by_name(settings.mlflow_experiment)
    if exp is not None:
        return str(exp.experiment_id)
    artifact_root = None
    if not settings.mlflow_tracking_uri.lower().startswith(("http://", "https://")):
        root = Path(settings.mlflow_artifacts_dir or settings.data_dir / "mlartifacts")
        root.mkdir(parents=True, exist_ok=True)
        artifact_root = root.resolve().as_uri()
    try:
        return str(
            client.create_experiment(settings.mlflow_experiment, artifact_location=artifact_root)
        )
    except MlflowException:  # created by a concurrent process meanwhile
        exp = client.get_experiment_by_name(settings.mlflow_experiment)
        if exp is None:
            raise
        return str(exp.experiment_id)


@dataclass(frozen=True, slots=True)
class TrackedRun:
    """One MLflow run, written through the client (no active run involved)."""

    client: MlflowClient
    run_id: str
    experiment_id: str

    def log(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Params, metrics (step 0) and tags in one call; values as ``mlflow.log_*`` store them."""
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def log_bytes(self, content: bytes, path: str) -> None:
        """``content`` as the run's artifact ``path`` (e.g. ``onnx/model.onnx``)."""
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(content)
            parent = Path(path).parent.as_posix()
            self.client.log_artifact(self.run_id, str(local), None if parent == "." else parent)

    def log_sklearn_model(
        self,
        pipeline: Any,
        *,
        registered_model_name: str,
        pip_requirements: list[str],
        skops_trusted_types: list[str] | None,
    ) -> str:
        """Save ``pipeline`` as an MLflow model of this run, register it, return its version.

        The steps of ``mlflow.sklearn.log_model(..., registered_model_name=...)``: a logged
        model linked to the run and to its metrics, the MLmodel directory uploaded as its
        artifacts, then a new version of the registered model pointing at it.
        """
        import mlflow.sklearn
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric
        from mlflow.exceptions import MlflowException
        from mlflow.models import Model
        from mlflow.tracking.context.registry import resolve_tags

        client = self.client
        run = client.get_run(self.run_id)
        model = client.create_logged_model(
            experiment_id=self.experiment_id,
            name=MODEL_NAME,
            source_run_id=self.run_id,
            params={k: str(v) for k, v in run.data.params.items()},
            tags=resolve_tags(),
        )
        try:
            client.log_outputs(self.run_id, [LoggedModelOutput(model.model_id, step=0)])
            # The run's metrics also become the logged model's (as log_model links them).
            client.log_batch(
                self.run_id,
                metrics=[
                    Metric(m.key, m.value, m.timestamp, m.step, model_id=model.model_id)
                    for key in run.data.metrics
                    for m in client.get_metric_history(self.run_id, key)
                    if m.step == 0 and m.model_id is None
                ],
            )
            with tempfile.TemporaryDirectory() as tmp:
                local = os.path.join(tmp, MODEL_NAME)
                mlflow.sklearn.save_model(
                    pipeline,
                    local,
                    mlflow_model=Model(
                        artifact_path=model.artifact_location,
                        model_uuid=model.model_id,
                        run_id=self.run_id,
                        model_id=model.model_id,
                    ),
                    # log_model's default for a store that is not Databricks, read from the
                    # global URI when left out.
                    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                    pip_requirements=pip_requirements,
                    skops_trusted_types=skops_trusted_types,
                )
                for pycache in Path(local).rglob("__pycache__"):
                    shutil.rmtree(pycache, ignore_errors=True)
                client.log_model_artifacts(model.model_id, local)
        except BaseException:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            raise
        client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)

        try:
            client.create_registered_model(registered_model_name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        # The source is the logged model's artifact location, where log_model's registration
        # gives "models:/<model id>": MLflow's SQL registry resolves that URI with the global
        # tracking URI (a TODO in its store), to the very location passed here.
        version = client.create_model_version(
            registered_model_name,
            source=model.artifact_location,
            run_id=self.run_id,
            model_id=model.model_id,
        )
        client.set_logged_model_tags(
            model.model_id,
            {
                MODEL_VERSIONS_TAG: json.dumps(
                    [{"name": registered_model_name, "version": version.version}]
                )
            },
        )
        return str(version.version)


@contextmanager
def tracked_run(settings: Settings, run_name: str) -> Iterator[TrackedRun]:
    """A run in our experiment, FINISHED when the block ends, FAILED if it raises.

    Tagged as ``mlflow.start_run`` tags its runs (user, source, git commit when known).
    """
    from mlflow.entities import RunStatus
    from mlflow.tracking.context.registry import resolve_tags

    client = mlflow_client(settings)
    experiment_id = ensure_experiment(settings, client)
    run = client.create_run(
        experiment_id, run_name=run_name, tags=resolve_tags({"mlflow.runName": run_name})
    )
    tracked = TrackedRun(client, run.info.run_id, experiment_id)
    try:
        yield tracked
    except BaseException:
        client.set_terminated(tracked.run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(tracked.run_id, RunStatus.to_string(RunStatus.FINISHED))


def load_sklearn_model(settings: Settings, name: str, version: str) -> Any:
    """Download one registered version's artifacts and load its scikit-learn model.

    ``mlflow.sklearn.load_model("models:/name/version")`` resolves the version with the
    process-wide registry URI; the version's own artifact location, from our client, does not.
    """
    import mlflow.artifacts
    import mlflow.sklearn

    uri = mlflow_client(settings).get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=tmp, tracking_uri=settings.mlflow_tracking_uri
        )
        return mlflow.sklearn.load_model(local)
