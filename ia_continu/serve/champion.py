"""The served model: load the champion once, swap it atomically when the champion changes.

Every API process polls a cheap marker (the last champion_history id) and reloads from MLflow
only when it moves, so a promotion or rollback reaches all replicas within
``champion_poll_seconds``, with no restart and no per-request I/O. When it moves, the MLflow
``champion`` alias is also checked against the DB (the source of truth).
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

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.families.base import Scores
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ServedModel:
    version: str
    pipeline: Any
    score: Callable[[np.ndarray], Scores]
    engine: str = "numpy"  # what computes the answers: numpy, onnxruntime or sklearn


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
        self.champion_version: str | None = None
        self.load_error: str | None = None
        self._marker: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_load_failure = on_load_failure

    def refresh(self, force: bool = False) -> bool:
        """Reload if the champion changed; returns True when a new model is served."""
        with self._lock:
            with session_scope(self.engine) as session:
                marker = registry.champion_marker(session, self.family.name)
                if marker == self._marker and not force:
                    return False
                version = registry.champion_version(session, self.family.name)
            self._marker = marker
            self.champion_version = version
            # The champion moved (or first load): a cheap moment to make sure the MLflow
            # alias says the same as the DB, in case a crash left them apart.
            registry.reconcile_alias(self.engine, self.settings)
            if version is None:
                self.current, self.load_error = None, None
                return False
            if self.current is not None and self.current.version == version:
                return False
            try:
                pipeline = registry.load_pipeline(self.settings, version)
                scorer = self.family.compile_scorer(pipeline)
                # Score one synthetic row now: a corrupt artifact fails here, not on traffic.
                scorer(np.zeros((1, self.family.n_features)))
            except Exception as exc:
                self.load_error = f"champion {version} failed to load: {type(exc).__name__}: {exc}"
                log.error(self.load_error)
                if self.on_load_failure:
                    self.on_load_failure(version, self.load_error)
                # Keep serving the previous model if there was one, else the fallback.
                return False
            self.family.adopt(pipeline)
            self.current = ServedModel(
                version, pipeline, scorer, self.family.serving_engine(pipeline)
            )
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
