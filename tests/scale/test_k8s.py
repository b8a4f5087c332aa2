"""deploy/k8s checked offline: each overlay renders with ``kubectl kustomize``, every rendered
document is valid against Kubernetes' own schemas (``kubernetes-validate --strict``), and the
manifests keep the promises of the README: several API replicas with probes, resources, a
PodDisruptionBudget and an autoscaler; secrets only by reference.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "prod"]
# The schemas kubernetes-validate bundles include this version; clusters older than it may lack
# a field used here (autoscaling/v2 and policy/v1 are GA since 1.23 and 1.21).
KUBERNETES_VERSION = "1.33.0"
SECRET_NAME = re.compile(r"KEY|PASSWORD|SECRET|TOKEN|DATABASE_URL|CONNECTION_URL|WEBHOOK")
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^@\s]+@")


def _kustomize_problem() -> str | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not installed (apt-get install kubectl; .ci/run does)"
    out = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True
    )
    try:
        version = json.loads(out.stdout).get("kustomizeVersion", "")
    except json.JSONDecodeError:
        version = ""
    major = re.match(r"v?(\d+)", version)
    if not major or int(major.group(1)) < 5:
        return f"kubectl's kustomize is {version or 'unknown'}; these manifests need v5+"
    return None


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, str, list[dict]]:
    """(overlay, rendered YAML, its documents)."""
    problem = _kustomize_problem()
    if problem:
        pytest.skip(problem)
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / request.param)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return request.param, result.stdout, docs


def _one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def _containers(doc: dict) -> list[dict]:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        pod = doc["spec"]["template"]["spec"]
        return pod.get("initContainers", []) + pod["containers"]
    return []


def test_every_rendered_document_is_valid_for_kubernetes(rendered, tmp_path):
    overlay, text, docs = rendered
    validator = Path(sys.executable).parent / "kubernetes-validate"
    if not validator.exists():
        pytest.skip("kubernetes-validate is not installed (it is in the dev extras)")
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(text)
    result = subprocess.run(
        [str(validator), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds


def test_api_has_replicas_probes_resources_a_pdb_and_an_hpa(rendered):
    _overlay, _text, docs = rendered
    api = _one(docs, "Deployment", "api")
    assert api["spec"]["replicas"] >= 2
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    # /health (GET and HEAD) answers 503 while the database is down: liveness must not
    # restart replicas for that.
    liveness = container["livenessProbe"]
    assert "/health" not in json.dumps(liveness)
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    labels = api["spec"]["template"]["metadata"]["labels"]

    pdb = _one(docs, "PodDisruptionBudget", "api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < api["spec"]["replicas"]

    hpa = _one(docs, "HorizontalPodAutoscaler", "api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["minReplicas"] <= api["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]

    service = _one(docs, "Service", "api")
    assert service["spec"]["selector"].items() <= labels.items()


def test_secrets_only_by_reference(rendered):
    overlay, _text, docs = rendered
    for doc in docs:
        for container in _containers(doc):
            for env in container.get("env", []):
                where = (overlay, doc["metadata"]["name"], container["name"], env["name"])
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], where
                assert not URL_WITH_PASSWORD.search(str(env.get("value", ""))), where
            for arg in container.get("args", []) + container.get("command", []):
                assert not URL_WITH_PASSWORD.search(arg), (overlay, doc["metadata"]["name"])
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                assert not SECRET_NAME.search(key), (overlay, doc["metadata"]["name"], key)
                assert not URL_WITH_PASSWORD.search(value), (overlay, doc["metadata"]["name"])
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    if overlay == "prod":
        assert not secrets, "production Secrets are created out of band, never rendered"
    else:
        assert {"ia-continu-app", "ia-continu-mlflow", "ia-continu-prefect"} <= secrets


def test_pods_meet_the_restricted_pod_security_standard(rendered):
    """The prod namespace enforces "restricted": a pod that does not meet it is refused."""
    overlay, _text, docs = rendered
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        where = (overlay, doc["metadata"]["name"])
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in _containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where


def test_dev_secrets_are_placeholders_marked_dev_only():
    for path in (K8S / "overlays" / "dev" / "secrets").glob("*.env"):
        text = path.read_text()
        assert text.startswith("# DEV ONLY"), path.name
        for line in text.splitlines():
            if "PASSWORD" in line or "SECRET" in line or "API_KEY" in line:
                value = line.split("=", 1)[1]
                assert not value or "dev-only" in value, (path.name, line)


def test_models_over_http_and_artifacts_proxied_to_s3(rendered):
    overlay, _text, docs = rendered
    config = _one(docs, "ConfigMap", "ia-continu-config")["data"]
    assert config["IA_CONTINU_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert config["IA_CONTINU_RATE_LIMIT_STORAGE_URI"].startswith("redis://redis:6379")
    mlflow = _one(docs, "Deployment", "mlflow")
    (container,) = mlflow["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["/usr/local/bin/mlflow-server.sh"]
    assert "--serve-artifacts" in container["args"]
    assert "--default-artifact-root=mlflow-artifacts:/" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"].startswith("s3://")
    if overlay == "dev":
        assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://minio:9000"
        _one(docs, "StatefulSet", "minio")
    else:
        assert "MLFLOW_S3_ENDPOINT_URL" not in env, "prod uses the cloud's S3"
        assert not [d for d in docs if d["metadata"]["name"] in ("minio", "postgres")]
    # No pod mounts a volume another Deployment mounts: only emptyDirs, ConfigMaps and the
    # StatefulSets' own claims.
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for volume in doc["spec"]["template"]["spec"].get("volumes", []):
                assert "persistentVolumeClaim" not in volume, (doc["metadata"]["name"], volume)
    # Only the MLflow server holds object-store credentials.
    for doc in docs:
        for c in _containers(doc):
            if doc["metadata"]["name"] != "mlflow":
                assert not any(e["name"].startswith("AWS_") for e in c.get("env", [])), doc


def test_prefect_worker_runs_flows_on_the_kubernetes_pool(rendered):
    overlay, _text, docs = rendered
    worker = _one(docs, "Deployment", "prefect-worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    k8s_pools = {p["name"] for p in spec["definitions"]["work_pools"].values()}
    assert env["PREFECT_WORK_POOL"]["value"] in k8s_pools
    assert env["PREFECT_WORK_POOL_TYPE"]["value"] == "kubernetes"
    # Flow-run Jobs run the worker's own image.
    assert env["IA_CONTINU_JOB_IMAGE"]["value"] == container["image"]
    sources = dict(s.split(":", 1) for s in env["IA_CONTINU_JOB_ENV_FROM"]["value"].split())
    assert sources == {"secret": "ia-continu-app", "configmap": "ia-continu-config"}
    if overlay == "dev":  # prod: the Secret is created out of band
        _one(docs, "Secret", sources["secret"])
    _one(docs, "ConfigMap", sources["configmap"])
    sa = worker["spec"]["template"]["spec"]["serviceAccountName"]
    binding = _one(docs, "RoleBinding", sa)
    role = _one(docs, "Role", binding["roleRef"]["name"])
    assert any("jobs" in r["resources"] and "create" in r["verbs"] for r in role["rules"])
    _one(docs, "ServiceAccount", "ia-continu-flow-run")


def test_prometheus_discovers_the_api_pods(rendered):
    _overlay, _text, docs = rendered
    config = yaml.safe_load(_one(docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "ia-continu-api"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    annotations = _one(docs, "Deployment", "api")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9000"
    relabel = {r.get("target_label"): r for r in job["relabel_configs"]}
    assert relabel["__address__"]["source_labels"][1] == (
        "__meta_kubernetes_pod_annotation_prometheus_io_port"
    )
    assert "pod" in relabel
    # (Debian's promtool is built without Kubernetes discovery: it cannot check this file.)


def test_kustomize_is_explained():
    text = (K8S / "README.md").read_text()
    assert "Helm" in text and "kubectl kustomize" in text and "kubernetes-validate" in text
