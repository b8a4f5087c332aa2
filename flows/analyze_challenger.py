"""analyze_challenger: one model's live challenger judged and moved (advance, hold, abort),
and its newest champion watched for an automatic rollback.

Each run, for the model:

1. The watch (``ia_continu.challenge.watch``): within ``watch_hours`` of the latest
   promotion, a new champion significantly worse live than the one it replaced is rolled
   back (audited as ``auto_rollback`` with its numbers, and alerted), once per promotion.
2. The arm (``ia_continu.challenge.analysis.compare``): its verdict is applied under the
   registry lock (``challenge.arms``), only if the arm is still the one judged, at the same
   step (an operator may have moved it meanwhile). Each step alerts as info; becoming
   champion and aborts alert as warnings.
3. Approval: when the policy asks for one and the verdict would make the challenger
   champion, the run pauses (``pause_flow_run``) waiting for an ``Approval`` input in the
   Prefect UI; approved -> promoted, refused or not answered within
   ``approval_timeout_minutes`` -> aborted. The wait is recorded on the arm, so a scheduled
   run meanwhile does not ask again. The registry lock is never held while waiting.

A markdown artifact per model shows both arms' figures and the verdict. ``analyze_every_model``
(the scheduled deployment) runs it for every model with a champion; the outcomes event
(``LoopEvent.outcomes_recorded``, from backfill_actuals) starts it for the model concerned.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field
from sqlalchemy import Engine

from flows.common import alert_flow_failure, artifact_key, for_each_model, model_view, run_engine
from ia_continu.challenge import arms, watch
from ia_continu.challenge.analysis import Comparison, compare
from ia_continu.challenge.policy import ChallengerPolicy
from ia_continu.config import Settings
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import utcnow
from notifications import Alert, Severity, notify

AWAITING = "awaiting_approval"  # key of the arm's last verdict while an approval is pending
# A hold for the same cause as the last one is audited again only after this long: the
# schedule looks every few minutes, and an arm waiting a day for outcomes would otherwise
# bury the audit log (and the dashboard's steps) under identical holds. GET .../challenger
# computes the comparison as it stands whenever asked.
HOLD_AUDIT_EVERY = timedelta(hours=1)


class Approval(RunInput):
    """What a human answers to "make the challenger champion?" in the Prefect UI."""

    approve: bool = Field(False, description="make the challenger champion")
    comment: str = Field("", max_length=500, description="why (kept in the audit log)")


# --- the new champion's watch -----------------------------------------------------------------


@task(cache_policy=NO_CACHE)
def watch_champion(settings: Settings, engine: Engine) -> dict[str, Any] | None:
    with session_scope(engine) as session:
        found = watch.check(session, settings)
    if found is None:
        return None
    rolled_back = found.verdict == "rollback" and watch.roll_back(engine, settings, found)
    if rolled_back:
        notify(
            Alert(
                f"Champion rolled back ({settings.family})",
                f"Version {found.version} was rolled back to {found.previous_version}: "
                f"{found.reason}",
                Severity.critical,
                {"model": settings.family, "version": found.version},
                key=f"auto-rollback-{settings.family}-{found.promotion_id}",
            ),
            settings,
        )
    return {**found.model_dump(mode="json"), "rolled_back": rolled_back}


# --- the arm ----------------------------------------------------------------------------------


@task(cache_policy=NO_CACHE)
def judge(settings: Settings, engine: Engine) -> Comparison | None:
    with session_scope(engine) as session:
        arm = arms.active(session, settings.family)
        return None if arm is None else compare(session, settings, arm)


def apply(
    settings: Settings,
    engine: Engine,
    comparison: Comparison,
    verdict: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """Apply ``verdict`` to the arm judged (a plain function, not a task: it also runs after
    an approval wait, when the run is paused and may not start tasks). Returns what
    happened: "step", "promoted", "held", "aborted", or "stale" when the arm changed."""
    with registry.registry_session(engine, settings) as session:
        arm = arms.active(session, settings.family)
        if (
            arm is None
            or arm.id != comparison.arm_id
            or arm.step != comparison.step
            or arm.mode != comparison.mode
        ):
            return "stale"
        numbers = {**comparison.numbers(), **(extra or {})}
        if verdict == "abort":
            arms.abort(session, arm, reason, numbers)
            return "aborted"
        if verdict == "hold":
            if extra is None and _same_hold(arm.last_verdict, comparison):
                return "held"
            arms.hold(session, arm, reason, numbers)
            return "held"
        return arms.advance(session, settings, arm, reason, numbers)


def _same_hold(last: dict[str, Any] | None, comparison: Comparison) -> bool:
    """Was the last verdict a hold for the same cause, audited less than an hour ago?"""
    if not last or last.get("verdict") != "hold" or last.get("hold") != comparison.hold:
        return False
    try:
        at = datetime.fromisoformat(str(last.get("at")))
    except ValueError:
        return False
    return utcnow() - at < HOLD_AUDIT_EVERY


def _pending_approval(settings: Settings, engine: Engine, comparison: Comparison) -> bool:
    """Is another run already waiting for this arm's approval (at this step)?"""
    with session_scope(engine) as session:
        arm = arms.active(session, settings.family)
        last = (arm.last_verdict or {}) if arm is not None else {}
    deadline = last.get("approval_deadline")
    return (
        arm is not None
        and arm.id == comparison.arm_id
        and last.get(AWAITING) is not None
        and deadline is not None
        and datetime.fromisoformat(deadline) > utcnow()
    )


def ask_approval(settings: Settings, engine: Engine, comparison: Comparison) -> tuple[str, str]:
    """Wait for a human; returns (verdict, reason) to apply."""
    policy = ChallengerPolicy.of(settings)
    timeout = max(1, round(policy.approval_timeout_minutes * 60))
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "?"
    deadline = utcnow() + timedelta(seconds=timeout)
    waiting = apply(
        settings,
        engine,
        comparison,
        "hold",
        f"awaiting approval until {deadline.isoformat(timespec='seconds')} UTC (flow run "
        f"{run_id}): {comparison.reason}",
        {AWAITING: run_id, "approval_deadline": deadline.isoformat()},
    )
    if waiting == "stale":
        return "stale", ""
    notify(
        Alert(
            f"Challenger awaits approval ({settings.family})",
            f"Version {comparison.version} would become champion: {comparison.reason}. "
            f"Resume flow run {run_id} in the Prefect UI within {timeout // 60} min "
            "(approve or refuse).",
            Severity.warning,
            {"model": settings.family, "version": comparison.version, "flow_run": run_id},
            key=f"approval-{settings.family}-{comparison.arm_id}",
        ),
        settings,
    )
    try:
        answer = pause_flow_run(
            wait_for_input=Approval,
            timeout=timeout,
            poll_interval=max(1, min(10, timeout // 10)),
            key=f"approve-arm-{comparison.arm_id}",
        )
    except FlowPauseTimeout:
        return "abort", f"approval timed out after {timeout / 60:g} min"
    note = f": {answer.comment}" if answer.comment else ""
    if answer.approve:
        return "advance", f"approved{note} ({comparison.reason})"
    return "abort", f"approval refused{note}"


def announce(settings: Settings, comparison: Comparison, outcome: str, reason: str) -> None:
    if outcome in ("held", "stale"):
        return
    title, severity = {
        "step": ("Challenger advanced", Severity.info),
        "promoted": ("Challenger promoted to champion", Severity.warning),
        "aborted": ("Challenger aborted", Severity.warning),
    }[outcome]
    notify(
        Alert(
            f"{title} ({settings.family})",
            f"Version {comparison.version} against champion {comparison.champion_version} "
            f"({comparison.mode}, {comparison.percentage:g} %): {reason}",
            severity,
            {
                "model": settings.family,
                "version": comparison.version,
                "metric": comparison.metric,
                "challenger": comparison.challenger.metric,
                "champion": comparison.champion.metric,
                "p_sequential": comparison.p_sequential,
                "p_value": comparison.p_value,
            },
            key=f"challenger-{outcome}-{settings.family}-{comparison.arm_id}-{comparison.step}",
        ),
        settings,
    )


def report_markdown(comparison: Comparison, outcome: str) -> str:
    c, o = comparison.challenger, comparison.champion

    def f(value: float | None, spec: str = ".4g") -> str:
        return "n/a" if value is None else format(value, spec)

    rows = [
        ("version", str(c.version), str(o.version)),
        ("rows", str(c.rows), str(o.rows)),
        ("labelled", str(c.labelled), str(o.labelled)),
        (comparison.metric, f(c.metric), f(o.metric)),
        ("error rate", f(c.error_rate, ".2%"), f(o.error_rate, ".2%")),
        ("fallback share", f(c.fallback_share, ".2%"), f(o.fallback_share, ".2%")),
        ("latency ms", f(c.latency_ms, ".3g"), f(o.latency_ms, ".3g")),
    ]
    lines = [
        f"# Challenger {comparison.version} against champion {comparison.champion_version}",
        "",
        f"{comparison.mode}, step {comparison.step}, {comparison.percentage:g} % of ML traffic;"
        f" window since {comparison.window_start.isoformat(timespec='seconds')} UTC",
        "",
        "| | challenger | champion |",
        "|---|---|---|",
        *(f"| {name} | {a} | {b} |" for name, a, b in rows),
        "",
        f"**{comparison.verdict}** ({outcome}): {comparison.reason}",
    ]
    if comparison.test:
        lines += [
            "",
            f"{comparison.test}: sequential p = {f(comparison.p_sequential, '.3g')} (the "
            f"verdict's), p = {f(comparison.p_value, '.3g')} (two-sided), "
            f"p(not worse) = {f(comparison.p_not_worse, '.3g')}, "
            f"p(worse) = {f(comparison.p_worse, '.3g')}; difference {f(comparison.difference)}"
            f" [{f(comparison.ci_low)}, {f(comparison.ci_high)}], margin {comparison.margin:g}",
        ]
    return "\n".join(lines)


@flow(name="analyze_challenger", on_failure=[alert_flow_failure])
def analyze_challenger(model: str | None = None) -> dict[str, Any]:
    """Judge ``model``'s live challenger and watch its newest champion (None: the default
    model)."""
    logger = get_run_logger()
    settings = model_view(model)
    with run_engine(settings) as engine:
        watched = watch_champion(settings, engine)
        comparison = judge(settings, engine)
        if comparison is None:
            logger.info("%s: no live challenger", settings.family)
            return {"model": settings.family, "arm": None, "watch": watched}
        verdict: str = comparison.verdict
        reason = comparison.reason
        policy = ChallengerPolicy.of(settings)
        # While another run waits for a human, only an abort (a guardrail, a significant loss)
        # may act: anything else would overwrite the wait and ask a second time.
        if verdict != "abort" and _pending_approval(settings, engine, comparison):
            logger.info("%s: an approval is already awaited", settings.family)
            return {
                "model": settings.family,
                "arm": comparison.model_dump(mode="json"),
                "outcome": "awaiting approval",
                "watch": watched,
            }
        if verdict == "advance" and comparison.promotes and policy.approval:
            verdict, reason = ask_approval(settings, engine, comparison)
        outcome = (
            "stale" if verdict == "stale" else apply(settings, engine, comparison, verdict, reason)
        )
    announce(settings, comparison, outcome, reason)
    create_markdown_artifact(
        key=artifact_key("ia-continu-challenger", settings.family),
        markdown=report_markdown(comparison, outcome),
        description=f"Live challenger of {settings.family}",
    )
    logger.info("%s: %s -> %s (%s)", settings.family, comparison.verdict, outcome, reason)
    return {
        "model": settings.family,
        "arm": comparison.model_dump(mode="json"),
        "outcome": outcome,
        "reason": reason,
        "watch": watched,
    }


@flow(name="analyze_every_model", on_failure=[alert_flow_failure])
def analyze_every_model(models: list[str] | None = None) -> dict[str, Any]:
    """analyze_challenger for each model (None: every declared model with a champion)."""
    return for_each_model(models, lambda name: analyze_challenger(model=name, return_state=True))


if __name__ == "__main__":
    analyze_challenger()
