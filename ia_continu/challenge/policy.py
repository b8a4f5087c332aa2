"""How a model's challengers are judged live: one object read from its settings view.

The service's ``IA_CONTINU_CHALLENGER_*``, ``CANARY_STEPS`` and ``CHAMPION_*`` settings are
the defaults; a declared model's ``[challenger]`` section replaces them for that model
(``catalog.model_settings``), so every stage reads the policy of the model it works on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ia_continu.config import Settings
from ia_continu.vocab import ArmMode

PolicyName = Literal["direct", "shadow", "canary", "shadow-then-canary"]


@dataclass(frozen=True, slots=True)
class ChallengerPolicy:
    name: PolicyName
    steps: tuple[float, ...]  # canary shares of the ML traffic, %, growing
    shadow_rate: float  # share of the champion's ML rows the challenger also scores
    min_labelled: int  # outcomes per arm before the analysis may decide
    alpha: float  # significance level of the live comparison
    min_step_minutes: float  # shortest time a step (or the shadow phase) lasts
    max_hours: float  # an arm still inconclusive after this long is aborted
    max_error_rate: float  # guardrails: each aborts at once
    max_latency_ratio: float
    max_fallback_share: float
    approval: bool  # becoming champion waits for a human
    approval_timeout_minutes: float
    watch_hours: float  # after a promotion: how long the new champion is watched live
    rollback_margin: float  # ... and how much worse than the previous one it may be

    @classmethod
    def of(cls, settings: Settings) -> ChallengerPolicy:
        return cls(
            name=settings.challenger_policy,
            steps=tuple(settings.canary_steps),
            shadow_rate=settings.challenger_shadow_rate,
            min_labelled=settings.challenger_min_labelled,
            alpha=settings.challenger_alpha,
            min_step_minutes=settings.challenger_min_step_minutes,
            max_hours=settings.challenger_max_hours,
            max_error_rate=settings.challenger_max_error_rate,
            max_latency_ratio=settings.challenger_max_latency_ratio,
            max_fallback_share=settings.challenger_max_fallback_share,
            approval=settings.challenger_approval,
            approval_timeout_minutes=settings.challenger_approval_timeout_minutes,
            watch_hours=settings.champion_watch_hours,
            rollback_margin=settings.champion_rollback_margin,
        )

    @property
    def live(self) -> bool:
        """Does a challenger that passed the gate go through a live arm (else: champion)?"""
        return self.name != "direct"

    @property
    def first_mode(self) -> ArmMode:
        return ArmMode.shadow if self.name in ("shadow", "shadow-then-canary") else ArmMode.canary
