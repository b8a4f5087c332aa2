"""prefect.yaml is the declaration; deployments/serve.py serves exactly what it declares (names,
entrypoints, tags, schedules, triggers, parameters), checked against what `prefect deploy`
itself would make of the yaml; and the live path: a drift event starts the served retrain."""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from deployments.serve import build_deployments
from deployments.spec import declared_deployments
from flows.common import model_resource
from flows.detect_drift import detect_drift
from flows.retrain import retrain_flow
from ia_continu.config import Settings
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ModelEvent
from ia_continu.vocab import LoopEvent, ModelEventKind
from tests.flows.test_loop import world

ROOT = Path(__file__).parents[2]


def _yaml_deployments() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def _as_prefect_deploy_would(schedule: dict[str, Any]) -> dict[str, Any]:
    """The schedule `prefect deploy` makes of a yaml entry, without its moving anchor date."""
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule

    made = _schedule_config_to_deployment_schedule(schedule)["schedule"]
    return made.model_dump(exclude={"anchor_date"})


def _retrain_trigger(name: str) -> dict[str, Any]:
    (trigger,) = [t for t in _yaml_deployments()["retrain"]["triggers"] if t["name"] == name]
    return trigger


def _trigger(raw: dict[str, Any]) -> dict[str, Any]:
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    return TypeAdapter(DeploymentTriggerTypes).validate_python(raw).model_dump()


def test_served_deployments_are_exactly_prefect_yaml_s():
    declared = _yaml_deployments()
    served = {d.name: d for d in build_deployments(Settings(environment="test"))}
    assert (
        list(served)
        == list(declared)
        == [
            "health-check",
            "backfill-actuals",
            "monitor-performance",
            "detect-drift",
            "retrain",
            "analyze-challenger",
            "analyze-challenger-schedule",
            "retrain-weekly",
            "ingest",
            "score-batch",
        ]
    )
    for name, d in declared.items():
        s = served[name]
        assert s.entrypoint == d["entrypoint"], name
        module = d["entrypoint"].split(":")[0]
        assert (ROOT / module).is_file()
        assert s.tags == d["tags"], name
        assert s.parameters == d.get("parameters", {}), name
        assert [x.schedule.model_dump(exclude={"anchor_date"}) for x in s.schedules] == [
            _as_prefect_deploy_would(x) for x in d.get("schedules", [])
        ], name
        assert [t.model_dump() for t in s.triggers] == [
            _trigger(t) for t in d.get("triggers", [])
        ], name


def test_the_retrain_trigger_listens_to_the_drift_event_flows_emit():
    trigger = _retrain_trigger("retrain-on-drift")
    assert trigger["expect"] == [LoopEvent.drift_detected]
    # The resource detect_drift's event is about is one the trigger matches.
    resource = model_resource(Settings(environment="test"), "1")
    ((label, pattern),) = trigger["match"].items()
    assert fnmatch.fnmatchcase(resource[label], pattern)
    params = trigger["parameters"]["reason"]
    for key in ("features", "share", "model_version"):
        assert f"event.payload.{key}" in params  # detect_drift's payload has them


def test_the_retrain_trigger_passes_the_event_s_model():
    """The trigger's parameters rendered by the Prefect server's own template code, against
    a drift event about the declared model iris: the retrain runs for iris."""
    from uuid import uuid4

    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.utilities.user_templates import render_user_template_sync

    from ia_continu.catalog import model_settings

    trigger = _retrain_trigger("retrain-on-drift")
    iris = model_settings(Settings(environment="test"), "iris")
    event = ReceivedEvent(
        id=uuid4(),
        occurred=datetime.now(UTC),
        event=LoopEvent.drift_detected,
        resource=model_resource(iris, "3"),
        payload={"features": ["petal_width"], "share": 0.5, "model_version": "3"},
    )
    rendered = {
        key: render_user_template_sync(template, {"event": event})
        for key, template in trigger["parameters"].items()
    }
    assert rendered["model"] == "iris"
    assert rendered["reason"] == "drift event: features ['petal_width'] (share 0.5) on model 3"
    # retrain_flow takes that parameter.
    assert "model" in inspect.signature(retrain_flow.fn).parameters


def test_the_sustained_degradation_trigger_starts_the_retrain_of_the_event_s_model():
    """The second retrain trigger, rendered by the Prefect server's template code against the
    event monitor_performance emits: the retrain runs for that model, and says why."""
    from uuid import uuid4

    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.utilities.user_templates import render_user_template_sync

    from ia_continu.catalog import model_settings

    trigger = _retrain_trigger("retrain-on-sustained-degradation")
    assert trigger["expect"] == [LoopEvent.degradation_sustained]
    iris = model_settings(Settings(environment="test"), "iris")
    ((label, pattern),) = trigger["match"].items()
    assert fnmatch.fnmatchcase(model_resource(iris, "2")[label], pattern)
    event = ReceivedEvent(
        id=uuid4(),
        occurred=datetime.now(UTC),
        event=LoopEvent.degradation_sustained,
        resource=model_resource(iris, "2"),
        payload={
            "windows": 3,
            "window_hours": 8.0,
            "crossed": ["accuracy 0.610 < 0.8"] * 3,
            "model_version": "2",
        },
    )
    rendered = {
        key: render_user_template_sync(template, {"event": event})
        for key, template in trigger["parameters"].items()
    }
    assert rendered["model"] == "iris"
    assert rendered["reason"].startswith("sustained degradation event: ['accuracy 0.610 < 0.8'")
    assert rendered["reason"].endswith("over 3 windows of 8.0 h on model 2")


def test_the_outcomes_trigger_starts_the_analysis_of_the_event_s_model():
    """backfill_actuals' event about iris, rendered by the Prefect server's template code
    against the analysis trigger: the challenger of iris is judged."""
    from uuid import uuid4

    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.utilities.user_templates import render_user_template_sync

    from flows.analyze_challenger import analyze_challenger
    from ia_continu.catalog import model_settings

    (trigger,) = _yaml_deployments()["analyze-challenger"]["triggers"]
    assert trigger["expect"] == [LoopEvent.outcomes_recorded]
    _trigger(trigger)  # a valid Prefect trigger
    iris = model_settings(Settings(environment="test"), "iris")
    ((label, pattern),) = trigger["match"].items()
    assert fnmatch.fnmatchcase(model_resource(iris, None)[label], pattern)
    event = ReceivedEvent(
        id=uuid4(),
        occurred=datetime.now(UTC),
        event=LoopEvent.outcomes_recorded,
        resource=model_resource(iris, None),
        payload={"updated": 120, "source": "synthetic"},
    )
    rendered = {
        key: render_user_template_sync(template, {"event": event})
        for key, template in trigger["parameters"].items()
    }
    assert rendered == {"model": "iris"}
    assert "model" in inspect.signature(analyze_challenger.fn).parameters


def test_scheduled_deployments_run_every_model_and_the_others_one():
    served = {d.name: d for d in build_deployments(Settings(environment="test"))}
    for name in (
        "backfill-actuals",
        "monitor-performance",
        "detect-drift",
        "retrain-weekly",
        "analyze-challenger-schedule",
    ):
        assert "models" in served[name]._parameter_openapi_schema.properties, name
        assert served[name].schedules, name
    assert "models" in served["ingest"]._parameter_openapi_schema.properties
    for name in ("retrain", "score-batch", "analyze-challenger"):
        assert "model" in served[name]._parameter_openapi_schema.properties, name
        assert not served[name].schedules, name  # the event, or the caller, says which model


def test_the_health_check_interval_setting_overrides_the_yaml_when_served():
    declared = _yaml_deployments()["health-check"]["schedules"]
    assert declared == [{"interval": Settings(environment="test").health_check_interval_seconds}]
    served = {
        d.name: d
        for d in build_deployments(Settings(environment="test", health_check_interval_seconds=15))
    }
    (schedule,) = served["health-check"].schedules
    assert schedule.schedule.interval == timedelta(seconds=15)
    # Only that one: the others keep prefect.yaml's.
    assert served["retrain-weekly"].schedules[0].schedule.cron == "0 3 * * 1"


def test_a_yaml_key_serve_does_not_handle_is_refused(tmp_path):
    path = tmp_path / "prefect.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "deployments": [
                    {"name": "x", "entrypoint": "flows/retrain.py:retrain_flow", "version": "2"}
                ]
            }
        )
    )
    with pytest.raises(ValueError, match="version"):
        declared_deployments(path)


def test_the_cli_waits_for_the_names_prefect_yaml_declares():
    from ia_continu.cli.run import expected_deployments

    names, triggers = expected_deployments()
    assert names == list(_yaml_deployments())
    assert triggers == [
        "retrain-on-drift",
        "retrain-on-sustained-degradation",
        "analyze-on-outcomes",
    ]


def test_prefect_yaml_trigger_is_a_valid_prefect_trigger():
    # `prefect deploy` validates triggers with this very type: a typo would only show there.
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    raws = next(d for d in spec["deployments"] if d["name"] == "retrain")["triggers"]
    triggers = [TypeAdapter(DeploymentTriggerTypes).validate_python(raw) for raw in raws]
    assert [t.expect for t in triggers] == [
        {LoopEvent.drift_detected},
        {LoopEvent.degradation_sustained},
    ]
    assert all(t.enabled for t in triggers)
    pools = {d["work_pool"]["name"] for d in spec["deployments"]}
    assert pools == {"ia-continu"}  # docker/worker-entrypoint.sh creates and serves it


async def _retrain_runs(api_url: str, since: datetime) -> list:
    """The retrain deployment's runs created since ``since``: the Prefect server is shared
    by the session, and other tests' triggers start retrain runs on it too."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["retrain"]))
        )
    return [r for r in runs if r.created is not None and r.created >= since]


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

        since = datetime.now(UTC)
        result = detect_drift()
        assert result["event_id"]

        deadline = time.monotonic() + 150
        runs = []
        while not any(r.state and r.state.is_final() for r in runs):
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"no retrain run finished: {runs}"
            time.sleep(2)
            runs = asyncio.run(_retrain_runs(prefect_server, since))
        (run,) = runs
        assert run.state.is_completed(), run.state
        assert run.parameters["reason"].startswith("drift event: features ['feature1']")
        assert run.parameters["model"] == "classification"  # the event's model
        with session_scope(engine) as session:
            kinds = [e.event for e in session.scalars(select(ModelEvent).order_by(ModelEvent.id))]
        assert kinds[-2:] == [ModelEventKind.retrain, ModelEventKind.promote]
        titles = [e["title"] for e in receiver.embeds()]
        assert "Retrain: version 2 promoted (classification)" in titles
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


def _trigger_exists(api_url: str) -> bool:
    import httpx

    r = httpx.post(f"{api_url}/automations/filter", json={}, timeout=10)
    return r.status_code == 200 and any(a["name"] == "retrain-on-drift" for a in r.json())
