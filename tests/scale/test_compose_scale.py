"""Static checks that the docker-compose stack scales out: no disk shared between services,
models only over HTTP through the MLflow server (artifacts proxied to MinIO), secrets only by
reference; and that every install (this machine, CI, the images) uses the same versions.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SECRETISH = re.compile(r"KEY|PASSWORD|SECRET|TOKEN|DATABASE_URL|CONNECTION_URL|WEBHOOK")
# A URL with a password in it: scheme://user:password@host
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _named_volumes(service: dict) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0]
        if not source.startswith(("./", "/")):
            out.append(source)
    return out


def test_no_volume_is_shared_between_services(services):
    users = Counter(v for s in services.values() for v in set(_named_volumes(s)))
    shared = {v: n for v, n in users.items() if n > 1}
    assert not shared, f"volumes mounted by several services: {shared}"
    for name, service in services.items():
        assert len(_named_volumes(service)) <= 1, (name, "keeps at most its own volume")


def test_minio_holds_the_artifacts_in_its_own_volume(services):
    minio = services["minio"]
    assert minio["image"].startswith("minio/minio:RELEASE.")
    assert _named_volumes(minio) == ["minio_data"]
    assert "healthcheck" in minio
    assert "ports" not in minio, "only the MLflow server talks to the object store"


def test_mlflow_proxies_artifacts_to_s3(services):
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[0] == "/usr/local/bin/mlflow-server.sh"
    args = dict(a.split("=", 1) if "=" in a else (a, "") for a in command[1:])
    assert "--serve-artifacts" in args
    assert args["--artifacts-destination"].startswith("s3://")
    assert args["--default-artifact-root"] == "mlflow-artifacts:/"
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert mlflow["depends_on"]["minio"] == {"condition": "service_healthy"}
    assert not _named_volumes(mlflow), "the MLflow server keeps nothing on disk"


def test_models_reach_the_api_and_the_worker_over_http_only(services):
    for name in ("api", "prefect-worker"):
        env = services[name]["environment"]
        assert env["IA_CONTINU_MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert "IA_CONTINU_MLFLOW_ARTIFACTS_DIR" not in env, name
        assert not any(k.startswith(("AWS_", "MLFLOW_S3")) for k in env), (
            f"{name} must not hold object-store credentials: the MLflow server proxies"
        )
        assert services[name]["depends_on"]["mlflow"] == {"condition": "service_healthy"}


def test_secrets_only_by_reference(services):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if SECRETISH.search(key) and value:
                assert value.startswith("${") or re.search(r"\$\{[A-Z_]+[:?-]", value), (
                    name,
                    key,
                    "a secret comes from the environment (.env), never written here",
                )
            for password in URL_WITH_PASSWORD.findall(value):
                assert password.startswith("${"), (name, key)
        command = service.get("command") or []
        for arg in command if isinstance(command, list) else [command]:
            for password in URL_WITH_PASSWORD.findall(str(arg)):
                assert password.startswith("${"), (name, arg)


def test_mlflow_server_script_is_in_the_image_and_parses():
    script = ROOT / "docker" / "mlflow-server.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert 'exec mlflow server "$@"' in text
    dockerfile = (ROOT / "docker" / "api.Dockerfile").read_text()
    assert "COPY docker/mlflow-server.sh /usr/local/bin/mlflow-server.sh" in dockerfile
    # The bucket-creation snippet is valid Python.
    snippet = text.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    compile(snippet, "mlflow-server.sh", "exec")


def test_worker_entrypoint_registers_the_deployments_on_a_kubernetes_pool():
    entrypoint = ROOT / "docker" / "worker-entrypoint.sh"
    subprocess.run(["sh", "-n", str(entrypoint)], check=True)
    text = entrypoint.read_text()
    for snippet in text.split("<<'PY'\n")[1:]:
        compile(snippet.split("\nPY\n", 1)[0], "worker-entrypoint.sh", "exec")
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    pools = {p["name"]: p for p in spec["definitions"]["work_pools"].values()}
    k8s = pools["ia-continu-k8s"]
    assert k8s["job_variables"]["image"] == "{{ $IA_CONTINU_JOB_IMAGE }}"
    # No deployment is declared on it: the process pool and `ia-continu run` are unchanged.
    assert all(d["work_pool"]["name"] == "ia-continu" for d in spec["deployments"])


# --- the same versions everywhere -------------------------------------------------------------


def _lock(path: Path) -> dict[str, str]:
    lock = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(";")[0].strip().split("==")
            lock[re.sub(r"[-_.]+", "-", name.lower())] = version
    return lock


def _pins(requirements: list[str]) -> dict[str, str]:
    out = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", requirement)
        assert match, f"{requirement} is not pinned"
        out[re.sub(r"[-_.]+", "-", match.group(1).lower())] = match.group(3)
    return out


def test_dev_lock_pins_what_pyproject_pins_and_agrees_with_the_image_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    image = _lock(ROOT / "docker" / "requirements.lock")
    dev = _lock(ROOT / "docker" / "requirements-dev.lock")
    extras = project["optional-dependencies"]
    wanted = _pins(project["dependencies"])
    for extra in extras.values():
        wanted.update(_pins(extra))
    for name, version in wanted.items():
        assert dev.get(name) == version, (
            f"{name}: pyproject {version} vs docker/requirements-dev.lock {dev.get(name)}; "
            "regenerate with the command at the top of the lock file"
        )
    # The images' extras are in the image lock too.
    for extra in ("s3", "kubernetes"):
        for name, version in _pins(extras[extra]).items():
            assert image.get(name) == version, (name, "docker/requirements.lock")
    # Every package of the images is in the dev lock at the same version.
    differ = {n: (v, dev.get(n)) for n, v in image.items() if dev.get(n) != v}
    assert not differ, f"image lock vs dev lock: {differ}"


def test_install_script_installs_from_the_dev_lock():
    text = (ROOT / "scripts" / "install.sh").read_text()
    assert "-r docker/requirements-dev.lock" in text
    assert "--no-deps -e ." in text
    assert '".[dev]"' not in text, "resolving again would not give the lock's versions"
