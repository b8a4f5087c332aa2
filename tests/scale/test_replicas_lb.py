"""Three API replicas behind a real load balancer, on the infrastructure a scaled-out
deployment has: haproxy (round-robin, health-checked on /health), one PostgreSQL schema, one
MLflow server whose artifacts live in an S3-compatible store (moto_server standing in for
MinIO, reached only by the MLflow server: proxied artifacts), one Redis for the rate limits.

Under traffic through the balancer, it checks that:
(a) a promotion reaches every replica within the champion poll interval (plus the model load);
(b) a 25 % rollout holds at 25 ± 2 % over 10,000 distinct request ids answered by all
    replicas, measured from the answers and from the prediction log, each id on the side its
    bucket says;
(c) every answered request is in the prediction log exactly once;
(d) the monitoring totals equal the number of answers;
(e) two replicas sharing Redis share one rate-limit budget;
(f) when one replica is SIGKILLed mid-traffic, haproxy routes around it after a few failures
    at most, and the answers lost with it are only the ones of its last flush window.

The figures are printed (``-s`` shows them) and quoted in the README's "Scaling out" section.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import create_engine, text

from ia_continu.config import Settings
from ia_continu.serve.bucketing import in_share
from tests.conftest import ADMIN, API_KEY, PG_URL, _pg_state, pg_available
from tests.live import LiveApi, free_port, start_api
from tests.scale import infra

pytestmark = pytest.mark.slow

BUCKET = "mlflow"
POLL_SECONDS = 1.0  # IA_CONTINU_CHAMPION_POLL_SECONDS of the replicas
FLUSH_MS = 100  # IA_CONTINU_LOG_FLUSH_INTERVAL_MS of the replicas
REDIS_URL = "redis://127.0.0.1:6379/0"
PAIR_LIMIT = 30  # /predict budget per minute of the rate-limit pair
# An answer the killed replica sent just before the signal can reach its client thread a
# little after it (a busy two-core machine schedules the thread late).
RECEIPT_SLACK = 0.5


@pytest.fixture
def pg_schema() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL schemas, as tests/conftest.py's ``db_url`` makes them; dropped after."""
    if not pg_available():
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {_pg_state.get('why')}")
    admin = create_engine(PG_URL)
    made: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        sep = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"

    yield make
    with admin.begin() as conn:
        for schema in made:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list]:
    """Everything started here is stopped at teardown, last started first."""
    started: list = []
    yield started
    for service in reversed(started):
        service.stop()


@pytest.fixture
def key_prefix() -> Iterator[str]:
    prefix = f"test-scale-{uuid.uuid4().hex[:10]}"
    yield prefix
    if infra.redis_up():
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def _env(tmp: Path, name: str, db_url: str, mlflow_url: str, **more: str) -> dict[str, str]:
    settings = Settings(environment="test")
    return {
        "IA_CONTINU_ENVIRONMENT": "test",
        "IA_CONTINU_DATA_DIR": str(tmp / name),
        "IA_CONTINU_DATABASE_URL": db_url,
        "IA_CONTINU_MLFLOW_TRACKING_URI": mlflow_url,
        "IA_CONTINU_MODEL_NAME_PREFIX": "scale",
        "IA_CONTINU_FAMILY": "classification",
        "IA_CONTINU_API_KEY": API_KEY,
        "IA_CONTINU_CHAMPION_POLL_SECONDS": str(POLL_SECONDS),
        "IA_CONTINU_ROLLOUT_CACHE_SECONDS": "0.5",
        "IA_CONTINU_LOG_FLUSH_INTERVAL_MS": str(FLUSH_MS),
        "IA_CONTINU_RATE_LIMIT_PREDICT": "1000000/minute",
        "IA_CONTINU_RATE_LIMIT_STORAGE_URI": REDIS_URL,
        "IA_CONTINU_ALERT_COOLDOWN_SECONDS": "0",
        "IA_CONTINU_MLFLOW_EXPERIMENT": settings.mlflow_experiment,
        **more,
    }


def _served(url: str) -> str | None:
    return httpx.get(url + "/health", timeout=10).json()["checks"]["served_version"]


def _flush(replicas: list[LiveApi]) -> None:
    """Make each live replica write what it has answered: /api/actuals flushes the writer of
    the process that answers it, so each replica is asked directly."""
    for replica in replicas:
        if replica.process.poll() is None:
            r = httpx.post(
                replica.url + "/api/actuals",
                json={"actuals": [{"request_id": "flush-probe", "actual": 0}]},
                headers=ADMIN,
                timeout=30,
            )
            assert r.status_code == 200, r.text


def _logged(db_url: str, like: str) -> dict[str, int]:
    """How many prediction-log rows each request id matching ``like`` has."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT request_id, count(*) FROM prediction_log WHERE request_id LIKE :like "
                "GROUP BY request_id"
            ),
            {"like": like},
        ).all()
    engine.dispose()
    return {rid: n for rid, n in rows}


@dataclass
class Traffic:
    """Threads sending one-row /predict calls through the balancer, each with a fresh id,
    recording every outcome with its time (monotonic)."""

    url: str
    prefix: str
    threads: int = 4
    answered: list[tuple[str, float]] = field(default_factory=list)  # (request id, answered at)
    failed: list[tuple[str, float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Traffic:
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, args=(i,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> Traffic:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)
        return self

    def _run(self, i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                rid = f"{self.prefix}-{i}-{n}"
                n += 1
                body = {"features": [rng.uniform(-2, 2), rng.uniform(-2, 2)], "request_id": rid}
                try:
                    r = client.post("/predict", json=body)
                except httpx.HTTPError as exc:
                    self.failed.append((rid, time.monotonic(), type(exc).__name__))
                    continue
                if r.status_code == 200:
                    self.answered.append((rid, time.monotonic()))
                else:
                    self.failed.append((rid, time.monotonic(), str(r.status_code)))


def test_three_replicas_behind_haproxy(tmp_path, pg_schema, services, key_prefix):
    if reason := infra.missing("haproxy", "moto", "redis"):
        pytest.skip(reason)
    from mlflow import MlflowClient

    figures: dict[str, object] = {}
    started_at = time.monotonic()

    # Everything starts at once (the replicas migrate the schema under an advisory lock, and
    # need MLflow only at the first retrain): on two cores this halves the start-up time.
    mlflow_url = f"http://127.0.0.1:{free_port()}"
    db_url, pair_db_url = pg_schema(), pg_schema()
    main_env = [
        _env(tmp_path, f"r{i}", db_url, mlflow_url, IA_CONTINU_RATE_LIMIT_KEY_PREFIX=key_prefix)
        for i in range(3)
    ]
    # The pair for the shared budget has its own schema: its answers stay out of the counts.
    pair_env = [
        _env(
            tmp_path,
            f"p{i}",
            pair_db_url,
            mlflow_url,
            IA_CONTINU_RATE_LIMIT_KEY_PREFIX=key_prefix + "-pair",
            IA_CONTINU_RATE_LIMIT_PREDICT=f"{PAIR_LIMIT}/minute",
        )
        for i in range(2)
    ]

    def start_stores() -> list[infra.Service]:
        s3 = infra.start_s3(tmp_path, BUCKET)
        try:
            port = int(mlflow_url.rsplit(":", 1)[1])
            return [s3, infra.start_mlflow(tmp_path, s3, BUCKET, port)]
        except BaseException:
            s3.stop()
            raise

    with ThreadPoolExecutor(6) as pool:
        stores = pool.submit(start_stores)
        apis = [pool.submit(start_api, env, tmp_path, timeout=150) for env in main_env + pair_env]
    errors = [f.exception() for f in [stores, *apis] if f.exception() is not None]
    if not stores.exception():
        services.extend(stores.result())
    services.extend(f.result() for f in apis if not f.exception())
    if errors:
        raise errors[0]
    s3, mlflow = stores.result()
    replicas = [f.result() for f in apis[:3]]
    pair = [f.result() for f in apis[3:]]
    figures["processes_ready_s"] = round(time.monotonic() - started_at, 1)
    lb = infra.start_haproxy(tmp_path, [r.url for r in replicas])
    services.append(lb)
    figures["start_s"] = round(time.monotonic() - started_at, 1)

    http = httpx.Client(base_url=lb.url, timeout=120)
    services.append(SimpleNamespace(stop=http.close))
    for seed, force in ((1, False), (2, True)):
        r = http.post(
            "/generate", json={"samples": 1000, "seed": seed, "drift": False}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        r = http.post("/retrain", json={"force": True} if force else None, headers=ADMIN)
        assert r.status_code == 200, r.text
    # The experiment was created by the first retrain (ensure_experiment) with the server's
    # default root: artifacts go over HTTP through the MLflow server to the object store.
    experiment = MlflowClient(tracking_uri=mlflow.url).get_experiment_by_name(
        Settings(environment="test").mlflow_experiment
    )
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment
    import boto3

    keys = [
        o["Key"]
        for o in boto3.client(
            "s3", endpoint_url=s3.url, region_name="us-east-1", **_s3_keys()
        ).list_objects_v2(Bucket=BUCKET)["Contents"]
    ]
    assert any(k.startswith("mlflow/") and k.endswith("MLmodel") for k in keys), keys

    traffic = Traffic(lb.url, f"bg-{uuid.uuid4().hex[:6]}").start()

    # (a) Every replica serves version 2; then version 1 is promoted through the balancer.
    deadline = time.monotonic() + 30
    while {_served(r.url) for r in replicas} != {"2"} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [_served(r.url) for r in replicas] == ["2"] * 3
    promoted_at = time.monotonic()
    assert http.post("/models/1/promote", headers=ADMIN).status_code == 200
    reached: dict[str, float] = {}
    while len(reached) < 3 and time.monotonic() - promoted_at < 30:
        for r in replicas:
            if r.url not in reached and _served(r.url) == "1":
                reached[r.url] = time.monotonic() - promoted_at
        time.sleep(0.05)
    figures["promotion_reached_s"] = sorted(round(s, 2) for s in reached.values())
    assert len(reached) == 3, f"promotion reached {len(reached)} of 3 replicas in 30 s"
    # The poll interval, plus loading the version through MLflow's proxy on a busy machine.
    assert max(reached.values()) <= POLL_SECONDS + 2.0, figures

    # (b) 25 % rollout over 10,000 distinct ids, sent in batches through the balancer.
    assert (
        http.post("/api/feature-flags/ml/percentage", json={"percentage": 25}, headers=ADMIN)
    ).status_code == 200
    time.sleep(1.5)  # every replica's rollout cache (0.5 s) has read the new share
    run = uuid.uuid4().hex[:6]
    batches = [[f"roll-{run}-{b}-{i}" for i in range(100)] for b in range(100)]

    def send(ids: list[str]) -> dict:
        rng = random.Random(ids[0])
        rows = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in ids]
        with httpx.Client(base_url=lb.url, timeout=60) as c:
            r = c.post("/predict/batch", json={"features": rows, "request_ids": ids})
        assert r.status_code == 200, r.text
        return r.json()

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, batches))
    figures["rollout_10k_rows_s"] = round(time.monotonic() - t0, 2)
    served = {
        rid: by for a in answers for rid, by in zip(a["request_ids"], a["served_by"], strict=True)
    }
    assert len(served) == 10_000
    ml_share = sum(by == "ml" for by in served.values()) / len(served)
    # Sticky: each id answered on the side its bucket says, whichever replica answered it.
    wrong_side = sum((by == "ml") != in_share(rid, 25) for rid, by in served.items())
    figures["rollout_share_answers"] = round(100 * ml_share, 2)
    figures["rollout_wrong_side"] = wrong_side
    assert abs(ml_share - 0.25) <= 0.02 and wrong_side == 0, figures

    traffic.stop()
    _flush(replicas)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        log_ml, log_n = conn.execute(
            text(
                "SELECT sum(CASE WHEN served_by = 'ml' THEN 1 ELSE 0 END), count(*) "
                "FROM prediction_log WHERE request_id LIKE :like"
            ),
            {"like": f"roll-{run}-%"},
        ).one()
        by_version = dict(
            conn.execute(
                text(
                    "SELECT model_version, count(*) FROM prediction_log "
                    "WHERE request_id LIKE :like AND served_by = 'ml' GROUP BY model_version"
                ),
                {"like": f"roll-{run}-%"},
            ).all()
        )
    engine.dispose()
    figures["rollout_share_log"] = round(100 * log_ml / log_n, 2)
    assert log_n == 10_000 and abs(log_ml / log_n - 0.25) <= 0.02, figures
    assert by_version == {"1": log_ml}  # the promoted champion answered every ML row

    # (c) Every answered request is in the log exactly once.
    answered = [rid for rid, _ in traffic.answered] + list(served)
    assert len(set(answered)) == len(answered)
    logged = {**_logged(db_url, f"{traffic.prefix}-%"), **_logged(db_url, f"roll-{run}-%")}
    figures["answered_before_kill"] = len(answered)
    figures["background_failures"] = len(traffic.failed)
    assert traffic.failed == []
    assert {rid for rid in answered if logged.get(rid) != 1} == set()
    assert set(logged) == set(answered)

    # (d) The monitoring totals are the answers.
    summary = http.get("/api/ml-monitoring/summary").json()
    status = http.get("/api/feature-flags/status").json()
    figures["summary_total"] = summary["total_predictions"]
    assert summary["total_predictions"] == len(answered), figures
    assert status["stats"]["total_requests"] == len(answered), status["stats"]

    # (e) One budget across the pair: PAIR_LIMIT answers whichever replica is asked, then 429.
    codes = [
        httpx.post(
            pair[i % 2].url + "/predict", json={"features": [0.1, 0.2]}, timeout=30
        ).status_code
        for i in range(PAIR_LIMIT + 10)
    ]
    assert codes == [200] * PAIR_LIMIT + [429] * 10, codes

    # (f) SIGKILL one replica under traffic.
    traffic = Traffic(lb.url, f"kill-{uuid.uuid4().hex[:6]}", threads=6).start()
    time.sleep(2.0)
    killed_at = time.monotonic()
    replicas[0].stop(signal.SIGKILL)
    time.sleep(3.0)
    traffic.stop()
    _flush(replicas[1:])
    logged = _logged(db_url, f"{traffic.prefix}-%")
    answered_at = dict(traffic.answered)
    missing = [rid for rid in answered_at if rid not in logged]
    late_failures = [f for f in traffic.failed if f[1] > killed_at + 1.0]
    window = 2 * FLUSH_MS / 1000 + 0.25
    in_window = sum(killed_at - window <= t <= killed_at for t in answered_at.values())
    figures.update(
        kill_answered=len(answered_at),
        kill_failures=len(traffic.failed),
        kill_failure_codes=sorted({f[2] for f in traffic.failed}),
        kill_missing=len(missing),
        kill_missing_oldest_ms=round(
            1000 * max((killed_at - answered_at[rid] for rid in missing), default=0), 1
        ),
        kill_answered_in_window=in_window,
        kill_after_s=round(time.monotonic() - killed_at, 1),
    )
    print("\nscale-out figures:", figures, flush=True)
    # Routed around: what fails is what was in flight on the killed replica (one request per
    # client thread at most), plus any request that raced the balancer's discovery that its
    # idle connections to it were closed; a connection refused is redispatched, not failed.
    # Nothing fails once the health check (2 x 200 ms) has taken it out.
    assert len(traffic.failed) <= 2 * traffic.threads and late_failures == [], figures
    assert sum(t > killed_at for t in answered_at.values()) > 0
    # Nothing is logged twice, nothing answered by a survivor is lost, and what the killed
    # replica lost was answered in its last flush windows before the kill.
    assert all(n == 1 for n in logged.values())
    assert all(
        killed_at - window <= answered_at[rid] <= killed_at + RECEIPT_SLACK for rid in missing
    ), figures
    assert len(missing) <= in_window
    figures["total_s"] = round(time.monotonic() - started_at, 1)
    print("scale-out figures:", figures)


def _s3_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": infra.S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": infra.S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    }
