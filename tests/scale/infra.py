"""Real infrastructure for the scale-out tests, each piece a subprocess on a free loopback
port: an S3-compatible object store (moto_server, standing in for MinIO), an MLflow tracking
server that proxies artifacts to it, haproxy in front of API replicas, Prometheus.

Nothing here downloads anything: haproxy and prometheus are Debian's packages (installed by
``.ci/run``), moto and boto3 are dev dependencies. ``missing()`` says what is absent, so a test
can skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live import free_port

BIN = Path(sys.executable).parent
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def missing(*needs: str) -> str | None:
    """Why the infrastructure is not there (None when it is): ``haproxy``, ``prometheus``,
    ``moto``, ``redis``."""
    reasons = []
    for need in needs:
        if need in ("haproxy", "prometheus") and shutil.which(need) is None:
            reasons.append(f"{need} not installed (apt-get install {need}; .ci/run does)")
        elif need == "moto" and not (BIN / "moto_server").exists():
            reasons.append("moto_server not installed (the dev extras pin moto[server])")
        elif need == "redis" and not redis_up():
            reasons.append("Redis unreachable at 127.0.0.1:6379")
    return "; ".join(reasons) or None


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None):
    log_path = log_dir / f"{name}.log"
    with open(log_path, "w") as handle:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    return proc, log_path


def _wait(service: Service, path: str, timeout: float, ok=(200,)) -> Service:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited:\n{service.log()[-3000:]}")
        try:
            if httpx.get(service.url + path, timeout=2).status_code in ok:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    service.stop()
    raise RuntimeError(f"{service.name} not ready in {timeout}s:\n{service.log()[-3000:]}")


def start_s3(log_dir: Path, bucket: str) -> Service:
    """moto_server (an S3-compatible API, in memory) with ``bucket`` created through boto3."""
    import boto3

    port = free_port()
    proc, log = _spawn(
        "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log_dir
    )
    service = _wait(Service("s3", proc, f"http://127.0.0.1:{port}", log), "/", 30)
    boto3.client(
        "s3",
        endpoint_url=service.url,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=bucket)
    return service


def start_mlflow(log_dir: Path, s3: Service, bucket: str, port: int | None = None) -> Service:
    """``mlflow server`` with a SQLite backend and proxied artifacts: clients talk HTTP to it
    only (``mlflow-artifacts:/``), and it alone holds the object store's endpoint and keys."""
    port = port or free_port()
    proc, log = _spawn(
        "mlflow",
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{log_dir / f'mlflow-{uuid.uuid4().hex[:6]}.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            f"s3://{bucket}/mlflow",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        log_dir,
        {"MLFLOW_S3_ENDPOINT_URL": s3.url, "AWS_DEFAULT_REGION": "us-east-1", **S3_KEYS},
    )
    return _wait(Service("mlflow", proc, f"http://127.0.0.1:{port}", log), "/health", 90)


HAPROXY_CFG = """\
global
    maxconn 4096

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    # A connection refused by a dead replica is retried on another one; a request the
    # replica had already received is not (a POST is not replayed: it may have been logged).
    retries 3
    option redispatch 1

frontend api
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /health
    # Fast detection: two failed checks 200 ms apart take a replica out.
    default-server inter 200ms fall 2 rise 2
{servers}
"""


def start_haproxy(log_dir: Path, backends: list[str]) -> Service:
    """haproxy, round-robin over ``backends`` (``http://127.0.0.1:PORT`` URLs), health-checked
    on ``/health``."""
    port = free_port()
    servers = "\n".join(
        f"    server r{i} {url.removeprefix('http://')} check" for i, url in enumerate(backends)
    )
    cfg = log_dir / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(port=port, servers=servers))
    check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc, log = _spawn("haproxy", ["haproxy", "-db", "-f", str(cfg)], log_dir)
    return _wait(Service("haproxy", proc, f"http://127.0.0.1:{port}", log), "/health", 20)


PROMETHEUS_CFG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ia-continu-api
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


def start_prometheus(log_dir: Path, target_url: str) -> Service:
    """Debian's prometheus scraping ``target_url``/metrics every second."""
    port = free_port()
    cfg = log_dir / "prometheus.yml"
    cfg.write_text(PROMETHEUS_CFG.format(target=target_url.removeprefix("http://")))
    data = log_dir / "prometheus-data"
    data.mkdir(exist_ok=True)
    proc, log = _spawn(
        "prometheus",
        [
            "prometheus",
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log_dir,
    )
    return _wait(Service("prometheus", proc, f"http://127.0.0.1:{port}", log), "/-/ready", 60)
