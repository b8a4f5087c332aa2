"""deployments/serve.py and prefect.yaml: same deployments, same schedules, same trigger; and
the live path: a drift event starts the served retrain deployment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from deployments.serve import RETRAIN_TRIGGER_PARAMETERS, build_deployments
from flows.common import DRIFT_EVENT
from flows.detect_drift import detect_drift
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ModelEvent
from tests.flows.test_loop import world

ROOT = Path(__file__).parents[2]


def test_prefect_yaml_matches_served_deployments():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    declared = {d["name"]: d for d in spec["deployments"]}
    served = {d.name: d for d in build_deployments()}
    assert (
        set(declared)
        == set(served)
        == {"health-check", "backfill-actuals", "monitor-performance", "detect-drift", "retrain"}
    )
    for name, d in declared.items():
        module, func = d["entrypoint"].split(":")
        assert (ROOT / module).is_file()
        assert served[name].flow_name in (func, func.removesuffix("_flow"))
        cron = d["schedules"][0].get("cron")
        served_schedule = served[name].schedules[0].schedule
        if cron:
            assert served_schedule.cron == cron
    (trigger,) = declared["retrain"]["triggers"]
    assert trigger["expect"] == [DRIFT_EVENT]
    assert trigger["parameters"] == RETRAIN_TRIGGER_PARAMETERS
    (served_trigger,) = served["retrain"].triggers
    assert served_trigger.expect == {DRIFT_EVENT}
    assert served_trigger.parameters == RETRAIN_TRIGGER_PARAMETERS
    assert trigger["match"] == {"prefect.resource.id": "ia-continu.model.*"}


def test_prefect_yaml_trigger_is_a_valid_prefect_trigger():
    # `prefect deploy` validates triggers with this very type: a typo would only show there.
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (raw,) = next(d for d in spec["deployments"] if d["name"] == "retrain")["triggers"]
    trigger = TypeAdapter(DeploymentTriggerTypes).validate_python(raw)
    assert trigger.expect == {DRIFT_EVENT} and trigger.enabled
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    assert pools == {"ia-continu"}  # docker/worker-entrypoint.sh creates and serves it


async def _retrain_runs(api_url: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["retrain"]))
        )


@pytest.mark.slow
def test_drift_event_triggers_the_served_retrain(
    flow_settings, client, engine, receiver, prefect_server
):
    world(flow_settings, engine, client, clean=200, drifted=1500)
    # The retrain deployment is served by another process, as `ia-continu run` does.
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    server = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve", "retrain"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        # Wait until the trigger (an automation, created after its deployment) exists.
        while not _trigger_exists(prefect_server):
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "retrain trigger never registered"
            time.sleep(1)

        result = detect_drift()
        assert result["event_id"]

        deadline = time.monotonic() + 150
        runs = []
        while not any(r.state and r.state.is_final() for r in runs):
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"no retrain run finished: {runs}"
            time.sleep(2)
            runs = asyncio.run(_retrain_runs(prefect_server))
        (run,) = runs
        assert run.state.is_completed(), run.state
        assert run.parameters["reason"].startswith("drift event: features ['feature1']")
        with session_scope(engine) as session:
            kinds = [e.event for e in session.scalars(select(ModelEvent).order_by(ModelEvent.id))]
        assert kinds[-2:] == ["retrain", "promote"]
        assert "Retrain: version 2 promoted" in [e["title"] for e in receiver.embeds()]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _trigger_exists(api_url: str) -> bool:
    import httpx

    r = httpx.post(f"{api_url}/automations/filter", json={}, timeout=10)
    return r.status_code == 200 and any(a["name"] == "retrain-on-drift" for a in r.json())
