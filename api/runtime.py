"""What one API process holds while it runs: engine, log writer, and per served model its
champion, rollout view and prediction path."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from api import metrics, metrics_db
from api.ratelimit import RateLimiter
from ia_continu.catalog import Catalog, catalog, model_settings
from ia_continu.config import Settings
from ia_continu.families import ModelFamily
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.redact import protect, redact
from ia_continu.serve.champion import ModelHolder
from ia_continu.serve.flag import RolloutCache
from ia_continu.serve.predictor import Predictor
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine
from ia_continu.watch.rollout_health import ErrorRateAlarm
from notifications import Alert, Severity, notify

log = logging.getLogger(__name__)


@dataclass
class ModelService:
    """One served model: its settings view, champion, rollout flag and prediction path."""

    settings: Settings  # ia_continu.catalog.model_settings: family = this model's name
    holder: ModelHolder
    flags: RolloutCache
    predictor: Predictor

    @property
    def name(self) -> str:
        return self.settings.family

    @property
    def family(self) -> ModelFamily:
        return self.holder.family

    @classmethod
    def start(
        cls, settings: Settings, engine: Engine, writer: PredictionLogWriter, *, default: bool
    ) -> ModelService:
        alert = _alerter(settings)
        name = settings.family
        holder = ModelHolder(
            settings,
            engine,
            on_load_failure=lambda version, error: alert(
                Alert(
                    "Champion model failed to load",
                    error,
                    Severity.critical,
                    {"model": name, "version": version},
                    key=f"load-failure-{name}-{version}",
                )
            ),
        )
        try:
            holder.refresh(force=True)
        except Exception as exc:  # registry unreachable: start on the fallback, say so
            holder.load_error = redact(f"champion lookup failed: {exc}")
            log.error(holder.load_error)
        flags = RolloutCache(engine, settings)
        flags.start()
        alarm = ErrorRateAlarm(
            settings,
            lambda rate, ml, failures: alert(
                Alert(
                    f"High ML error rate ({name})",
                    f"ML error rate {rate:.1%}: consider disabling ML",
                    Severity.critical,
                    {"model": name, "ml_requests": ml, "failures": failures},
                    key=f"rollout-error-rate-{name}",
                )
            ),
        )
        predictor = Predictor(
            settings,
            holder,
            flags,
            writer if settings.prediction_log_enabled else None,
            alarm,
            observe=metrics.observe_predictions if default else metrics.observer(name),
        )
        holder.start_polling()
        return cls(settings, holder, flags, predictor)

    def stop(self) -> None:
        self.holder.stop_polling()
        self.flags.stop()


@dataclass
class Runtime:
    """The process's shared parts, and one ModelService per model it serves.

    The default model (``IA_CONTINU_FAMILY``) starts with the process; any other declared
    model starts on its first request (``model(name)``): an unused declaration costs nothing,
    and a model added to the folder is served by the next start of every replica.
    """

    settings: Settings
    engine: Engine
    writer: PredictionLogWriter
    limiter: RateLimiter
    # Declared models (built-ins plus IA_CONTINU_MODELS_DIR), checked at start.
    declared: Catalog
    default: ModelService
    started_at: float = field(default_factory=time.time)
    _services: dict[str, ModelService] = field(default_factory=dict)
    _services_lock: threading.Lock = field(default_factory=threading.Lock)
    # /health's database check, cached for a second: Uptime Kuma, Prometheus and the dashboard
    # pinging together cost one query.
    _db_check: tuple[float, bool, str | None] = (0.0, True, None)

    # The default model's parts, under the names the single-model routes use.
    @property
    def holder(self) -> ModelHolder:
        return self.default.holder

    @property
    def flags(self) -> RolloutCache:
        return self.default.flags

    @property
    def predictor(self) -> Predictor:
        return self.default.predictor

    @property
    def services(self) -> dict[str, ModelService]:
        """The models started so far (the default first)."""
        return {self.default.name: self.default, **self._services}

    def model(self, name: str | None = None) -> ModelService:
        """The service of model ``name`` (None: the default), started on first use; raises
        UnknownModel for a name no declaration gives."""
        if name is None or name == self.default.name:
            return self.default
        service = self._services.get(name)
        if service is not None:
            return service
        view = model_settings(self.settings, name)  # UnknownModel before anything starts
        with self._services_lock:
            service = self._services.get(name)
            if service is None:
                service = ModelService.start(view, self.engine, self.writer, default=False)
                self._services[name] = service
        return service

    def check_database(self, ttl: float = 1.0) -> tuple[bool, str | None]:
        checked_at, ok, error = self._db_check
        if time.monotonic() - checked_at > ttl:
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                ok, error = True, None
            except Exception as exc:
                # Shown by /health to anyone: a driver may echo its URL, password included.
                lines = redact(str(exc)).splitlines() or [""]
                ok, error = False, f"{type(exc).__name__}: {lines[0][:200]}"
            self._db_check = (time.monotonic(), ok, error)
        return ok, error

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        # First: from here on no log line, alert or error text carries a secret.
        protect(settings)
        settings.check_production()
        logging.getLogger("ia_continu").setLevel(settings.log_level.upper())
        # Before anything opens or starts: a malformed declaration stops the start with the
        # loader's message (every file and field at fault), nothing to clean up; so does a
        # default model that no declaration gives.
        declared = catalog(settings)  # checks only (schema, imports, parameters)
        default_settings = model_settings(settings)
        engine = make_engine(settings.database_url, connect_retries=5)
        if settings.migrate_on_start:
            migrate.upgrade(engine)
        writer = PredictionLogWriter.from_settings(engine, settings)
        writer.start()
        default = ModelService.start(default_settings, engine, writer, default=True)
        metrics.bind_runtime(default.holder, writer, default_settings)
        metrics_db.bind(engine, default_settings)  # model events and quality, at scrape time
        limiter = RateLimiter.from_settings(settings)
        return cls(settings, engine, writer, limiter, declared, default)

    def stop(self) -> None:
        metrics_db.COLLECTOR.unbind(self.engine)
        self.limiter.close()
        for service in self.services.values():
            service.stop()
        self.writer.stop()
        self.engine.dispose()


def _alerter(settings: Settings) -> Callable[[Alert], None]:
    """notify() bound to this process's settings (webhook URL and cooldown)."""
    url = settings.discord_webhook_url.get_secret_value() if settings.discord_webhook_url else None

    def send(alert: Alert) -> None:
        notify(alert, webhook_url=url or None, cooldown=settings.alert_cooldown_seconds)

    return send
