"""``ia-continu run`` + ``ia-continu demo``: the main job really starts, registers the
deployments with their schedules and the drift trigger, the demo's drift event triggers a
retrain whose version goes live as a canary, the analysis ramps it to champion step by step
(audited, alerted), and SIGTERM stops every child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from ia_continu.vocab import LoopEvent
from tests.flows.conftest import free_port

ROOT = Path(__file__).parents[2]


def _children(pid: int) -> set[int]:
    """Every process in the sessions the run command started (its children's groups)."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,sid="], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    rows = [tuple(map(int, line.split())) for line in out if line.strip()]
    direct = {p for p, ppid, _ in rows if ppid == pid}
    return {p for p, _, sid in rows if sid in direct} | direct


@pytest.mark.slow
def test_run_and_demo_then_sigterm_stops_everything(tmp_path):
    api_port, prefect_port, alerts_port = free_port(), free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("IA_CONTINU_", "PREFECT_API_URL"))
    }
    env.update(
        IA_CONTINU_DATA_DIR=str(tmp_path / "data"),
        IA_CONTINU_PORT=str(api_port),
        IA_CONTINU_ENVIRONMENT="test",
        # The canary path: two steps, judged as soon as each arm has 100 outcomes.
        IA_CONTINU_CHALLENGER_POLICY="canary",
        IA_CONTINU_CANARY_STEPS="[25, 100]",
        IA_CONTINU_CHALLENGER_MIN_STEP_MINUTES="0",
        IA_CONTINU_CHALLENGER_MIN_LABELLED="100",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ia_continu.cli",
            "run",
            "--no-mlflow-ui",
            "--prefect-port",
            str(prefect_port),
            "--alerts-port",
            str(alerts_port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 240
        for line in proc.stdout:
            output.append(line)
            if "is running" in line or time.monotonic() > deadline:
                break
        assert "ia-continu is running\n" in output, "".join(output)
        children = _children(proc.pid)
        assert len(children) >= 3  # api, prefect server, flows (and their own children)

        api = f"http://127.0.0.1:{prefect_port}/api"
        deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
        schedules = {
            d["name"]: d["schedules"][0]["schedule"] for d in deployments if d["schedules"]
        }
        assert schedules["health-check"]["interval"] == 60
        assert schedules["retrain-weekly"]["cron"] == "0 3 * * 1"
        # The event-driven retrain and the batch scoring run when told, not on a clock.
        assert "retrain" not in schedules and "score-batch" not in schedules
        assert all(not d["paused"] for d in deployments)
        automations = httpx.post(f"{api}/automations/filter", json={}, timeout=10).json()
        (trigger,) = [a["trigger"] for a in automations if a["name"] == "retrain-on-drift"]
        assert trigger["expect"] == [LoopEvent.drift_detected]
        health = httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "degraded"  # no model

        # The demo drives one full cycle: drift detected, the event triggers the served
        # retrain, the gate puts the new version live as a canary, the analysis ramps it to
        # champion, the alerts reach run's local receiver.
        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "ia_continu.cli",
                "demo",
                "--prefect-api-url",
                api,
                "--alerts-url",
                f"http://127.0.0.1:{alerts_port}/webhook",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        out = demo.stdout
        assert demo.returncode == 0, out[-3000:] + demo.stderr[-3000:]
        assert "dataset drift True" in out
        assert "audit: challenger_started version 2" in out, out
        assert "Challenger v2 is live against champion v1: policy canary" in out, out
        assert "ADVANCED -> canary 100%" in out, out
        assert "PROMOTED -> champion" in out, out
        assert "audit: challenger_promoted version 2; champion is now 2" in out, out
        assert "Data drift detected" in out
        assert "Retrain: version 2 challenger" in out
        assert "Challenger promoted to champion" in out
        # The audit log holds each step with its numbers: started at 25 %, advanced to
        # 100 % on a test, then champion.
        db = create_engine(f"sqlite:///{tmp_path / 'data' / 'ia_continu.db'}")
        with db.connect() as conn:
            steps = conn.execute(
                text(
                    "SELECT event, metrics FROM model_events WHERE event IN "
                    "('challenger_started', 'challenger_advanced', 'challenger_promoted') "
                    "ORDER BY id"
                )
            ).all()
        db.dispose()
        kinds = [e for e, _ in steps]
        assert kinds == ["challenger_started", "challenger_advanced", "challenger_promoted"]
        numbers = [json.loads(m) if isinstance(m, str) else m for _, m in steps]
        assert [n["percentage"] for n in numbers[:2]] == [25.0, 100.0]
        assert numbers[1]["p_value"] is not None and numbers[1]["p_not_worse"] < 0.05

        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert "stopped api" in rest
        time.sleep(0.5)
        alive = {p for p in children if _alive(p)}
        assert not alive, f"children left running: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_the_local_loop_judges_new_versions_as_a_canary_unless_told_otherwise(monkeypatch):
    """`ia-continu run` hands its children a live canary policy (so the demo shows the canary
    path); a value set by the user wins, and production keeps the settings' defaults."""
    from ia_continu.cli.run import child_env
    from ia_continu.config import Settings

    for name in ("CHALLENGER_POLICY", "CANARY_STEPS", "ENVIRONMENT", "API_KEY"):
        monkeypatch.delenv(f"IA_CONTINU_{name}", raising=False)
    env = child_env(Settings(_env_file=None), "http://127.0.0.1:4200/api")
    assert env["IA_CONTINU_CHALLENGER_POLICY"] == "canary"
    with monkeypatch.context() as m:  # what a child process reads from that environment
        for name in _CHALLENGER_VARS:
            m.setenv(name, env[name])
        children = Settings(_env_file=None)
    assert children.challenger_policy == "canary" and children.canary_steps == (25.0, 100.0)
    assert children.challenger_min_step_minutes == 0

    monkeypatch.setenv("IA_CONTINU_CHALLENGER_POLICY", "direct")
    env = child_env(Settings(_env_file=None), "http://127.0.0.1:4200/api")
    assert env["IA_CONTINU_CHALLENGER_POLICY"] == "direct"

    monkeypatch.delenv("IA_CONTINU_CHALLENGER_POLICY")
    production = Settings(
        _env_file=None, environment="production", api_key="k" * 4 + "x9Q!r7Zt-2mP"
    )
    assert "IA_CONTINU_CHALLENGER_POLICY" not in child_env(production, "http://x/api")


_CHALLENGER_VARS = (
    "IA_CONTINU_CHALLENGER_POLICY",
    "IA_CONTINU_CANARY_STEPS",
    "IA_CONTINU_CHALLENGER_MIN_STEP_MINUTES",
    "IA_CONTINU_CHALLENGER_MIN_LABELLED",
)
