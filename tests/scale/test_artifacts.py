"""Models travel over HTTP only: with a tracking server, the API needs no disk shared with it.

A real ``mlflow server --serve-artifacts`` runs as a subprocess. First with a local
``--artifacts-destination`` folder: the API's retrain logs its model through the server, the
files land in the server's destination, nothing of it in the client's data folder, and the
champion is loaded back over HTTP. Then as docker-compose and Kubernetes run it, through
``docker/mlflow-server.sh`` with an S3 destination (moto_server standing in for MinIO, with no
bucket yet): the script creates the bucket, and the model ends up as objects in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import train
from tests.live import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def _serving(argv: list[str], log_path: Path, url: str, env: dict[str, str]) -> Iterator[None]:
    """Run ``argv`` until the block ends; ready when ``url`` answers 200."""
    with open(log_path, "w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "MLFLOW_DISABLE_TELEMETRY": "true",
                # docker/mlflow-server.sh calls `python` and `mlflow`: this environment's.
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                **env,
            },
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{argv[0]} exited:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{argv[0]} not ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_args(root: Path, port: int, destination: str) -> list[str]:
    return [
        f"--backend-store-uri=sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts",
        f"--artifacts-destination={destination}",
        "--default-artifact-root=mlflow-artifacts:/",
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=1",
    ]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(url, artifacts destination) of a tracking server proxying artifacts to a folder."""
    root = tmp_path_factory.mktemp("mlflow-server")
    destination = root / "destination"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(BIN / "mlflow"), "server", *_server_args(root, port, str(destination))]
    with _serving(argv, root / "server.log", f"{url}/health", {}):
        yield url, destination


def _files(folder: Path, name: str) -> list[Path]:
    return sorted(folder.rglob(name)) if folder.exists() else []


def _wait_served_by_ml(client) -> None:
    deadline = time.monotonic() + 30
    while True:
        r = client.post("/predict", json={"features": [0.4, -1.1]})
        assert r.status_code == 200, r.text
        if r.json().get("served_by") == "ml":
            return
        assert time.monotonic() < deadline, r.json()
        time.sleep(0.2)


def _experiment_root(url: str) -> str:
    from mlflow import MlflowClient

    experiment = MlflowClient(tracking_uri=url).get_experiment_by_name("ia_continu_solution")
    assert experiment is not None
    return experiment.artifact_location


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
    assert _experiment_root(url).startswith("mlflow-artifacts:")

    # The model's files are in the server's destination, and nowhere on the client's side.
    assert _files(destination, "MLmodel"), f"no model under {destination}"
    assert not client_artifacts.exists(), "the client created a local artifact root"
    assert not _files(tmp_path / "data", "MLmodel"), "model files in the client's data folder"

    # The champion is loaded back over HTTP and serves.
    _wait_served_by_ml(client)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_compose_server_script_creates_its_bucket_and_stores_models_in_s3(
    make_client, tmp_path
):
    if not (BIN / "moto_server").exists():
        pytest.skip("moto_server not installed (the dev extras pin moto[server])")
    import boto3

    s3_port, mlflow_port = free_port(), free_port()
    s3_url = f"http://127.0.0.1:{s3_port}"
    url = f"http://127.0.0.1:{mlflow_port}"
    bucket = "ia-continu-artifacts"
    moto = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
    script = [
        "sh",
        str(ROOT / "docker" / "mlflow-server.sh"),
        *_server_args(tmp_path, mlflow_port, f"s3://{bucket}/artifacts"),
    ]
    with (
        _serving(moto, tmp_path / "s3.log", s3_url, S3_ENV),
        _serving(
            script,
            tmp_path / "mlflow.log",
            f"{url}/health",
            {**S3_ENV, "MLFLOW_S3_ENDPOINT_URL": s3_url},
        ),
    ):
        assert f"created bucket '{bucket}'" in (tmp_path / "mlflow.log").read_text()
        client = make_client(mlflow_tracking_uri=url)
        assert train(client)["promoted"] is True
        assert _experiment_root(url).startswith("mlflow-artifacts:")
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_ENV["AWS_DEFAULT_REGION"],
        )
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert any(k.startswith("artifacts/") and k.endswith("/MLmodel") for k in keys), keys
        assert not _files(tmp_path / "data", "MLmodel")
        _wait_served_by_ml(client)
