"""The served model: load the champion once, swap it atomically when the champion changes.

Every API process polls a cheap marker (the last champion_history id) and reloads only when
it moves, so a promotion or rollback reaches all replicas within ``champion_poll_seconds``,
with no restart and no per-request I/O. A version is loaded from its served form in the
database when it has one (``ia_continu.serve.forms``: no MLflow, no scikit-learn in the
process), else from MLflow. The MLflow ``champion`` alias is kept in step with the DB (the
source of truth) by every registry change and by the performance monitor's runs
(``registry.reconcile_alias``), not by every API process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine

from ia_continu.challenge import arms
from ia_continu.challenge.arms import LiveArm
from ia_continu.config import Settings
from ia_continu.errors import VersionNeedsFeature
from ia_continu.families import ModelFamily, get_family
from ia_continu.families.base import Scores
from ia_continu.learn import registry
from ia_continu.serve import forms
from ia_continu.serve.forms import ServingForm
from ia_continu.store.engine import session_scope

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ServedModel:
    version: str
    pipeline: Any  # the scikit-learn pipeline; None when served from its form (no sklearn)
    score: Callable[[np.ndarray], Scores]
    engine: str = "numpy"  # what computes the answers: numpy, onnxruntime or sklearn
    estimator: str = ""  # the class of the final step, as /health shows it
    onnx: dict[str, Any] | None = None  # a declared model's ONNX check, as GET /models shows it
    form: ServingForm | None = None  # what it was served from, when not from MLflow


@dataclass(frozen=True, slots=True)
class Challenger:
    """The live challenger as this process serves it: its arm and its loaded model."""

    arm: LiveArm
    model: ServedModel


class ModelHolder:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        on_load_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.family: ModelFamily = get_family(settings.family, settings)
        self.current: ServedModel | None = None  # replaced whole: readers never see a mix
        self.challenger: Challenger | None = None  # the live challenger arm, same rule
        self.challenger_error: str | None = None
        self.champion_version: str | None = None
        self.load_error: str | None = None
        self._marker: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_load_failure = on_load_failure

    def refresh(self, force: bool = False) -> bool:
        """Reload if the champion changed; returns True when a new model is served. The live
        challenger arm is read on every call (one indexed row) and its model loaded here too,
        off the request path."""
        with self._lock:
            with session_scope(self.engine) as session:
                marker = registry.champion_marker(session, self.family.name)
                row = arms.active(session, self.family.name)
                arm = None if row is None else LiveArm.of(row)
                version = None
                if marker != self._marker or force:
                    version = registry.champion_version(session, self.family.name)
            # The champion first: a promoted challenger's model is reused, not loaded again.
            changed = False
            if marker != self._marker or force:
                changed = self._refresh_champion(marker, version)
            self._refresh_challenger(arm)
            return changed

    def _load(self, version: str) -> ServedModel:
        """``version`` as this process serves it: from its served form in the database when
        it has one (then neither MLflow nor scikit-learn is loaded here), else from MLflow,
        writing its form on the way for the next start (``ia_continu.serve.forms``)."""
        family = self.family
        with session_scope(self.engine) as session:
            record = forms.record(session, family.name, version)
        form, scorer = None, None
        try:
            form = None if record is None else ServingForm.from_record(record)
            scorer = None if form is None else family.scorer_from_form(form)
        except VersionNeedsFeature:
            raise  # the version no longer fits the declaration: MLflow's copy would not either
        except Exception as exc:  # bad bytes, a missing array: MLflow still has the version
            log.warning("served form of version %s unreadable (%s): from MLflow", version, exc)
        if form is not None and scorer is not None:
            meta = form.meta
            model = ServedModel(
                version,
                None,
                scorer,
                str(meta.get("engine", "numpy")),
                str(meta.get("estimator")),
                meta.get("onnx"),
                ServingForm(form.kind, {}, meta),  # its arrays live on in the scorer only
            )
        else:
            pipeline = registry.load_pipeline(self.settings, version)
            model = ServedModel(
                version,
                pipeline,
                family.compile_scorer(pipeline),
                family.serving_engine(pipeline),
                family.estimator_name(pipeline),
                family.onnx_report(pipeline),
            )
            if record is None:
                forms.keep(self.engine, family, version, pipeline, registering=False)
        # Score one synthetic row now: a corrupt artifact fails here, not on traffic.
        model.score(np.zeros((1, family.n_features)))
        return model

    def _refresh_challenger(self, arm: LiveArm | None) -> None:
        current = self.challenger
        if arm is None:
            self.challenger, self.challenger_error = None, None
            return
        if current is not None and current.model.version == arm.version:
            if current.arm != arm:  # a step: same model, new share
                self.challenger = Challenger(arm, current.model)
            return
        if self.challenger_error is not None and self.challenger_error.startswith(
            f"challenger {arm.version} "
        ):
            return  # failed before: the analysis' guardrails see no challenger answers
        try:
            model = self._load(arm.version)
        except Exception as exc:
            self.challenger = None
            self.challenger_error = (
                f"challenger {arm.version} failed to load: {type(exc).__name__}: {exc}"
            )
            log.error(self.challenger_error)
            return
        self.challenger, self.challenger_error = Challenger(arm, model), None
        log.info("challenger %s live (%s, %s%%)", arm.version, arm.mode, arm.percentage)

    def _refresh_champion(self, marker: int, version: str | None) -> bool:
        self._marker = marker
        self.champion_version = version
        if version is None:
            self.current, self.load_error = None, None
            return False
        if self.current is not None and self.current.version == version:
            return False
        challenger = self.challenger
        try:
            if challenger is not None and challenger.model.version == version:
                model = challenger.model
            else:
                model = self._load(version)
        except Exception as exc:
            self.load_error = f"champion {version} failed to load: {type(exc).__name__}: {exc}"
            log.error(self.load_error)
            if self.on_load_failure:
                self.on_load_failure(version, self.load_error)
            # Keep serving the previous model if there was one, else the fallback.
            return False
        if model.pipeline is not None:
            self.family.adopt(model.pipeline)
        elif model.form is not None:
            self.family.adopt_form(model.form)
        self.current = model
        self.load_error = None
        log.info("serving %s version %s", self.settings.registered_model_name, version)
        return True

    # --- background polling ----------------------------------------------------------------
    def start_polling(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="champion-poller", daemon=True)
        self._thread.start()

    def stop_polling(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _poll(self) -> None:
        last_retry = time.monotonic()
        while not self._stop.wait(self.settings.champion_poll_seconds):
            # A failed load is retried even if the champion did not move (the artifact store
            # may come back), but not on every poll: each attempt logs and alerts.
            retry = self.load_error is not None and time.monotonic() - last_retry > RETRY_SECONDS
            if retry:
                last_retry = time.monotonic()
            try:
                self.refresh(force=retry)
            except Exception as exc:  # DB down: keep serving what we have
                log.debug("champion poll failed: %s", exc)
