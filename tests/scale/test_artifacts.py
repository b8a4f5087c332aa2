"""Models travel over HTTP only: with a tracking server, the API needs no disk shared with it.

A real ``mlflow server --serve-artifacts`` runs as a subprocess with a local
``--artifacts-destination`` folder (in docker-compose and Kubernetes it is an S3 bucket; the
proxying is the same). The API's retrain logs its model through the server: the files land in
the server's destination, nothing of it in the client's data folder, and the champion is loaded
back over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import train
from tests.live import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(url, artifacts destination) of a tracking server proxying artifacts to a folder."""
    root = tmp_path_factory.mktemp("mlflow-server")
    destination = root / "destination"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    with open(log_path, "w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--serve-artifacts",
                "--artifacts-destination",
                str(destination),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url, destination
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _files(folder: Path, name: str) -> list[Path]:
    return sorted(folder.rglob(name)) if folder.exists() else []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_retrain_logs_the_model_through_the_server_not_to_a_local_folder(
    tracking_server, make_client, tmp_path
):
    url, destination = tracking_server
    client_artifacts = tmp_path / "client-artifacts"
    client = make_client(mlflow_tracking_uri=url, mlflow_artifacts_dir=client_artifacts)

    answer = train(client)
    assert answer["promoted"] is True, answer

    # The experiment took the server's root: artifacts are addressed through the server.
    from mlflow import MlflowClient

    experiment = MlflowClient(tracking_uri=url).get_experiment_by_name("ia_continu_solution")
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), (
        experiment.artifact_location
    )

    # The model's files are in the server's destination, and nowhere on the client's side.
    assert _files(destination, "MLmodel"), f"no model under {destination}"
    assert not client_artifacts.exists(), "the client created a local artifact root"
    assert not _files(tmp_path / "data", "MLmodel"), "model files in the client's data folder"

    # The champion is loaded back over HTTP and serves.
    deadline = time.monotonic() + 30
    while True:
        r = client.post("/predict", json={"features": [0.4, -1.1]})
        assert r.status_code == 200, r.text
        if r.json().get("served_by") == "ml":
            break
        assert time.monotonic() < deadline, r.json()
        time.sleep(0.2)
