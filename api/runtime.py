"""What one API process holds while it runs: engine, served model, rollout view, log writer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from api import metrics, metrics_db
from api.ratelimit import RateLimiter
from ia_continu.config import Settings
from ia_continu.declared import Declaration, load_declarations
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
class Runtime:
    settings: Settings
    engine: Engine
    holder: ModelHolder
    flags: RolloutCache
    writer: PredictionLogWriter
    predictor: Predictor
    limiter: RateLimiter
    # Declared models (built-ins plus IA_CONTINU_MODELS_DIR), checked at start; listed by
    # GET /models/declared, not served yet.
    declared: DeclaredModels
    started_at: float = field(default_factory=time.time)
    # /health's database check, cached for a second: Uptime Kuma, Prometheus and the dashboard
    # pinging together cost one query.
    _db_check: tuple[float, bool, str | None] = (0.0, True, None)

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
        # loader's message (every file and field at fault), nothing to clean up.
        declared = DeclaredModels.load(settings)
        engine = make_engine(settings.database_url, connect_retries=5)
        if settings.migrate_on_start:
            migrate.upgrade(engine)
        alert = _alerter(settings)
        holder = ModelHolder(
            settings,
            engine,
            on_load_failure=lambda version, error: alert(
                Alert(
                    "Champion model failed to load",
                    error,
                    Severity.critical,
                    {"version": version},
                    key=f"load-failure-{version}",
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
        writer = PredictionLogWriter(
            engine,
            batch_size=settings.log_batch_size,
            flush_interval=settings.log_flush_interval_ms / 1000,
            max_pending=settings.log_max_pending,
            spool_dir=settings.data_dir / "spool",
        )
        writer.start()
        alarm = ErrorRateAlarm(
            settings,
            lambda rate, ml, failures: alert(
                Alert(
                    "High ML error rate",
                    f"ML error rate {rate:.1%}: consider disabling ML",
                    Severity.critical,
                    {"ml_requests": ml, "failures": failures},
                    key="rollout-error-rate",
                )
            ),
        )
        predictor = Predictor(
            settings,
            holder,
            flags,
            writer if settings.prediction_log_enabled else None,
            alarm,
            observe=metrics.observe_predictions,
        )
        holder.start_polling()
        metrics.bind_runtime(holder, writer, settings)
        metrics_db.bind(engine, settings)  # model events and quality, read at scrape time
        limiter = RateLimiter.from_settings(settings)
        return cls(settings, engine, holder, flags, writer, predictor, limiter, declared)

    def stop(self) -> None:
        metrics_db.COLLECTOR.unbind(self.engine)
        self.limiter.close()
        self.holder.stop_polling()
        self.flags.stop()
        self.writer.stop()
        self.engine.dispose()


@dataclass(frozen=True)
class DeclaredModels:
    """The model declarations this process read at start, by name, and which are built in."""

    models: dict[str, Declaration]
    builtin: frozenset[str]

    @classmethod
    def load(cls, settings: Settings) -> DeclaredModels:
        """Built-ins plus ``settings.models_dir``; raise DeclarationError naming each file and
        field at fault. Checks only (schema, imports, parameters): nothing is fitted."""
        prefixes = settings.estimator_prefixes
        builtin = load_declarations(extra_prefixes=prefixes)
        if settings.models_dir is None:
            return cls(builtin, frozenset(builtin))
        # Loaded together, so a user file reusing a built-in's name is refused too.
        every = load_declarations(settings.models_dir, extra_prefixes=prefixes)
        return cls(every, frozenset(builtin))


def _alerter(settings: Settings) -> Callable[[Alert], None]:
    """notify() bound to this process's settings (webhook URL and cooldown)."""
    url = settings.discord_webhook_url.get_secret_value() if settings.discord_webhook_url else None

    def send(alert: Alert) -> None:
        notify(alert, webhook_url=url or None, cooldown=settings.alert_cooldown_seconds)

    return send
