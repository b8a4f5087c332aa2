"""The one settings object: every knob of ia-continu, read from ``IA_CONTINU_*`` variables.

Defaults are the embedded development set-up (a SQLite file and a local MLflow store under
``data/``). Outside development, secrets have no usable default: see ``check_production``.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_API_KEY = "dev-insecure-key"


class Family(StrEnum):
    classification = "classification"
    delay = "delay"


class Settings(BaseSettings):
    """Every setting is documented in README.md and .env.example."""

    model_config = SettingsConfigDict(
        env_prefix="IA_CONTINU_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- runtime -----------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 9000
    api_url: str = Field("", description="Where flows and the CLI reach the API; default host:port")
    family: Family = Family.classification
    migrate_on_start: bool = True
    log_level: str = "INFO"

    # --- storage -----------------------------------------------------------------------
    database_url: str = Field("", description="SQLAlchemy URL; default sqlite under data_dir")
    mlflow_tracking_uri: str = Field("", description="default sqlite:///<data_dir>/mlflow.db")
    mlflow_artifacts_dir: Path | None = None
    mlflow_experiment: str = "ia_continu_solution"
    model_name_prefix: str = Field("ia_continu", description="registered model = <prefix>_<family>")

    # --- security ----------------------------------------------------------------------
    api_key: SecretStr | None = None
    rate_limit_predict: str = "100/minute"
    rate_limit_retrain: str = "10/hour"
    rate_limit_enabled: bool = True

    max_batch_rows: int = Field(50_000, ge=1, description="rows accepted by one /predict/batch")
    max_actuals_per_call: int = Field(
        100_000, ge=1, description="outcomes accepted by one POST /api/actuals"
    )

    # --- prediction log ------------------------------------------------------------------
    log_batch_size: int = Field(500, ge=1, description="rows per group commit")
    log_flush_interval_ms: int = Field(50, ge=1, description="max time a row waits to be written")
    log_max_pending: int = Field(200_000, ge=1000, description="rows kept while the DB is down")

    # --- model lifecycle -----------------------------------------------------------------
    promotion_margin: float = Field(
        0.0, ge=0, description="how much worse than the champion a challenger may be"
    )
    holdout_fraction: float = Field(0.2, gt=0.05, lt=0.5)
    champion_poll_seconds: float = Field(2.0, gt=0)
    delay_tolerance_minutes: float = Field(3.0, gt=0)

    # --- rollout (initial values; afterwards the DB row is the truth) ---------------------
    ml_enabled: bool = True
    ml_traffic_percentage: float = Field(100.0, ge=0, le=100)
    fallback_on_error: bool = True
    rollout_cache_seconds: float = Field(1.0, ge=0, description="how stale a replica's view may be")
    shadow_sample_rate: float = Field(0.1, ge=0, le=1)
    rollout_error_alert_rate: float = Field(0.2, gt=0, le=1)
    rollout_error_alert_min_requests: int = Field(100, ge=1)

    # --- monitoring thresholds (seed 001 / seed 002) -------------------------------------
    mae_threshold: float = 3.0
    rmse_threshold: float = 4.0
    r2_threshold: float = 0.65
    accuracy_threshold: float = 0.80
    latency_threshold_ms: float = 150.0
    anomaly_threshold: float = 5.0
    drift_share: float = Field(0.5, gt=0, le=1)

    # --- alerts --------------------------------------------------------------------------
    discord_webhook_url: SecretStr | None = None
    alert_cooldown_seconds: float = 600.0

    # --- flows ---------------------------------------------------------------------------
    health_check_interval_seconds: int = 60
    ground_truth_delay_seconds: float = Field(
        60.0,
        ge=0,
        description="how long after a prediction the built-in source reveals its outcome",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, url: str) -> str:
        # Users paste URLs from docs and Heroku-style env vars; psycopg 3 is our driver.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        self.data_dir = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'ia_continu.db'}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{self.data_dir / 'mlflow.db'}"
        if self.mlflow_artifacts_dir is None:
            self.mlflow_artifacts_dir = self.data_dir / "mlartifacts"
        if not self.api_url:
            self.api_url = f"http://{self.host}:{self.port}"
        return self

    @property
    def registered_model_name(self) -> str:
        return f"{self.model_name_prefix}_{self.family.value}"

    @property
    def effective_api_key(self) -> str:
        """The key admin routes expect; the development default never leaves development."""
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        if self.environment == "production":
            raise RuntimeError("IA_CONTINU_API_KEY must be set in production")
        return DEV_API_KEY

    def check_production(self) -> None:
        """Refuse to start in production with a missing or development secret."""
        if self.environment != "production":
            return
        key = self.api_key.get_secret_value() if self.api_key else ""
        if not key or key == DEV_API_KEY or len(key) < 16:
            raise RuntimeError(
                "IA_CONTINU_API_KEY must be set to a secret of at least 16 characters in production"
            )

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


@lru_cache
def get_settings() -> Settings:
    return Settings()
