"""Every model a deployment can serve, by name: the built-in families and the declarations.

A model is named by its declaration (built in, or a ``.toml`` file in ``IA_CONTINU_MODELS_DIR``).
``classification`` and ``delay`` are also built-in Python families: their declarations
describe them, but they are served by the family code (hand-made features, a numpy scoring
path, contributing factors) so their behaviour and figures stay what they were. Every other
name is served by :class:`~ia_continu.declared.family.DeclaredFamily`.

``model_settings`` is how one process (or one flow run) works on several models: the
settings object with ``family`` set to the model's name and the monitoring knobs taken from
its declaration. Every stage already reads "which model" and "which thresholds" from the
settings, so a stage given this view works on that model and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING, Any

from ia_continu.declared.errors import DeclarationError
from ia_continu.declared.load import load_declarations
from ia_continu.declared.schema import Declaration
from ia_continu.errors import UnknownModel

if TYPE_CHECKING:
    from ia_continu.config import Settings
    from ia_continu.families.base import ModelFamily

# Served by the Python families of ia_continu.families (see the module docstring).
CODE_FAMILIES = frozenset({"classification", "delay"})


@dataclass
class Catalog:
    """The declarations one configuration sees, and one family object per declared model."""

    declarations: dict[str, Declaration]
    builtin: frozenset[str]
    prefixes: tuple[str, ...] = ()
    _families: dict[str, ModelFamily] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    @property
    def names(self) -> list[str]:
        return sorted(self.declarations)

    def declaration(self, name: str) -> Declaration:
        try:
            return self.declarations[name]
        except KeyError:
            raise UnknownModel(
                f"no model named {name!r}; declared: {', '.join(self.names)}"
            ) from None

    def declared_family(self, name: str) -> ModelFamily:
        """The DeclaredFamily of ``name``, built once (it holds the encoder and fallback)."""
        from ia_continu.declared.family import DeclaredFamily

        with self._lock:
            family = self._families.get(name)
            if family is None:
                family = DeclaredFamily(self.declaration(name), self.prefixes)
                self._families[name] = family
            return family


@lru_cache(maxsize=16)
def _load(models_dir: Path | None, prefixes: tuple[str, ...]) -> Catalog:
    builtin = load_declarations(extra_prefixes=prefixes)
    every = (
        builtin
        if models_dir is None
        # Loaded together, so a user file reusing a built-in's name is refused too.
        else load_declarations(models_dir, extra_prefixes=prefixes)
    )
    return Catalog(every, frozenset(builtin), prefixes)


def catalog(settings: Settings | None = None) -> Catalog:
    """The models ``settings`` declare (built-ins only without settings). Loaded once per
    (folder, prefixes); raises DeclarationError naming every file and field at fault."""
    if settings is None:
        return _load(None, ())
    return _load(settings.models_dir, settings.estimator_prefixes)


def reload_catalog() -> None:
    """Forget loaded declarations (tests that write declaration files, a reload command)."""
    _load.cache_clear()


def model_settings(settings: Settings, name: str | None = None) -> Settings:
    """``settings`` for model ``name`` (default: ``settings.family``): ``family`` is the
    name, and a declared model's monitoring, gate and challenger values replace the global
    knobs.

    The built-in families keep the global knobs: they are tuned by them today.
    """
    name = name or settings.family
    if name in CODE_FAMILIES and name == settings.family:
        return settings
    update: dict[str, Any] = {"family": name}
    if name not in CODE_FAMILIES:
        d = catalog(settings).declaration(name)
        m = d.monitoring
        knobs: dict[str, Any] = {
            "accuracy_threshold": m.min_accuracy,
            "mae_threshold": m.max_mae,
            "rmse_threshold": m.max_rmse,
            "r2_threshold": m.min_r2,
            "anomaly_threshold": m.anomaly_error,
            "drift_share": m.drift_share,
            "degradation_windows": m.degradation_windows,
            "degradation_window_hours": m.degradation_window_hours,
            "promotion_margin": d.gate.margin,
            "holdout_fraction": d.gate.holdout_fraction,
        }
        c = d.challenger
        knobs |= {
            "challenger_policy": c.policy,
            "canary_steps": None if c.steps is None else tuple(c.steps),
            "challenger_shadow_rate": c.shadow_rate,
            "challenger_min_labelled": c.min_labelled,
            "challenger_alpha": c.alpha,
            "challenger_min_step_minutes": c.min_step_minutes,
            "challenger_max_hours": c.max_hours,
            "challenger_max_error_rate": c.max_error_rate,
            "challenger_max_latency_ratio": c.max_latency_ratio,
            "challenger_max_fallback_share": c.max_fallback_share,
            "challenger_approval": c.approval,
            "challenger_approval_timeout_minutes": c.approval_timeout_minutes,
            "champion_watch_hours": c.watch_hours,
            "champion_rollback_margin": c.rollback_margin,
        }
        update |= {k: v for k, v in knobs.items() if v is not None}
    else:
        catalog(settings).declaration(name)  # still a declared name
    return settings.model_copy(update=update)


__all__ = ["CODE_FAMILIES", "Catalog", "DeclarationError", "catalog", "model_settings"]
