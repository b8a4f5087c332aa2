"""The one settings object: every knob of ia-continu, read from ``IA_CONTINU_*`` variables.

Defaults are the embedded development set-up (a SQLite file and a local MLflow store under
``data/``). Outside development, secrets have no usable default: see ``check_production``.
"""

from __future__ import annotations

import math
from collections import Counter
from enum import StrEnum
from functools import lru_cache
from ipaddress import ip_network
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_API_KEY = "dev-insecure-key"
RATE_LIMIT_SCHEMES = frozenset({"memory", "redis", "rediss", "redis+unix"})

# Production keys: a random 16-character key passes these with near certainty (a 16-digit hex
# key has fewer than 6 distinct characters about once in 40,000 draws); blank, whitespace,
# repeated or one-character-heavy keys do not.
MIN_KEY_LENGTH = 16
MIN_KEY_DISTINCT = 6
MIN_KEY_BITS = 32.0
PLACEHOLDER_KEYS = frozenset({DEV_API_KEY, "changeme", "change-me", "change_me", "secret"})
# The delay family's default: a prediction within 3 minutes of the real delay is accurate.
DELAY_TOLERANCE_MINUTES = 3.0


def key_entropy_bits(key: str) -> float:
    """Length x the Shannon entropy of the key's own character frequencies: an estimate
    that is low for repeated or one-character-heavy keys (it cannot see other weak keys)."""
    counts = Counter(key)
    n = len(key)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def api_key_problem(key: str) -> str | None:
    """Why ``key`` is not acceptable in production, or None."""
    if not key or not key.strip():
        return "it is missing or blank"
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        return "it contains whitespace or control characters"
    if key.lower() in PLACEHOLDER_KEYS or DEV_API_KEY in key:
        return "it is the development default or a placeholder"
    if len(key) < MIN_KEY_LENGTH:
        return f"it is shorter than {MIN_KEY_LENGTH} characters"
    if len(set(key)) < MIN_KEY_DISTINCT or key_entropy_bits(key) < MIN_KEY_BITS:
        return "it is too repetitive to be random"
    return None


def check_canary_steps(steps: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """Canary shares must grow strictly, each in (0, 100]: a step back would hand requests
    that the challenger answered back to the champion, and stickiness would be lost."""
    steps = tuple(float(s) for s in steps)
    if not all(0 < s <= 100 for s in steps):
        raise ValueError("each canary step is a share of traffic in (0, 100]")
    if any(b <= a for a, b in pairwise(steps)):
        raise ValueError("canary steps must grow strictly, e.g. [5, 25, 50, 100]")
    return steps


class Family(StrEnum):
    """The model families a deployment can serve (ia_continu.families)."""

    classification = "classification"
    delay = "delay"


class Settings(BaseSettings):
    """Every setting is documented in README.md and .env.example."""

    model_config = SettingsConfigDict(
        env_prefix="IA_CONTINU_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        # A validation error must not echo a value: several settings are secrets or URLs
        # holding passwords.
        hide_input_in_errors=True,
    )

    # --- runtime -----------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = Field(
        "development",
        description="production refuses to start without a strong API key (16+ characters, "
        "no whitespace, not repetitive)",
    )
    data_dir: Path = Field(Path("data"), description="the embedded stores, reports, spool, logs")
    host: str = Field("127.0.0.1", description="where `ia-continu run` binds the API")
    port: int = Field(9000, description="the API's port")
    api_url: str = Field("", description="where flows and the CLI reach the API; default host:port")
    family: str = Field(
        "classification",
        pattern=r"^[a-z][a-z0-9_]{0,47}$",
        description="the default model: what /predict, /retrain... serve without a model name "
        "(classification, delay, iris, bike_traffic or a declared one)",
    )
    migrate_on_start: bool = Field(True, description="apply Alembic migrations when the API starts")
    log_level: str = Field("INFO", description="level of the ia_continu loggers")

    # --- storage -----------------------------------------------------------------------
    database_url: str = Field(
        "",
        description="SQLAlchemy URL (postgres:// accepted); default sqlite:///<data_dir>/ia_continu.db",
    )
    mlflow_tracking_uri: str = Field(
        "", description="MLflow tracking and registry store; default sqlite:///<data_dir>/mlflow.db"
    )
    mlflow_artifacts_dir: Path | None = Field(
        None, description="artifact root of the experiment; default <data_dir>/mlartifacts"
    )
    mlflow_experiment: str = Field("ia_continu_solution", description="MLflow experiment name")
    model_name_prefix: str = Field(
        "ia_continu", description="registered model name = <prefix>_<family>"
    )

    # --- security and limits -------------------------------------------------------------
    api_key: SecretStr | None = Field(
        None,
        description="admin key (X-API-Key); development falls back to dev-insecure-key, "
        "production refuses a missing, short, blank or repetitive one",
    )
    # 100 requests/s sustained per client, bursts up to 6000: one backend service scoring its
    # own traffic fits (about 6 % of one replica's measured 1,500-1,900 requests/s), while one
    # client still cannot take a replica over; bigger jobs go through /predict/batch.
    rate_limit_predict: str = Field(
        "6000/minute", description="per client, /predict and /predict/batch together"
    )
    rate_limit_retrain: str = Field("10/hour", description="per client, /retrain")
    rate_limit_enabled: bool = Field(True, description="turn the rate limits off (benchmarks)")
    rate_limit_storage_uri: str = Field(
        "memory://",
        description="where the limit counters live: memory:// (each process counts apart) or "
        "redis://host:6379[/db] (every replica shares one budget; if Redis is unreachable "
        "/predict is served unlimited and /retrain answers 503)",
    )
    rate_limit_key_prefix: str = Field(
        "ia_continu",
        min_length=1,
        description="prefix of the counters in a shared store: one per deployment sharing a Redis",
    )
    trusted_proxies: str = Field(
        "",
        description="proxies whose X-Forwarded-For names the client (comma-separated IPs or "
        "CIDRs); empty: none, the TCP peer is the client",
    )
    max_batch_rows: int = Field(50_000, ge=1, description="rows accepted by one /predict/batch")
    max_actuals_per_call: int = Field(
        100_000, ge=1, description="outcomes accepted by one POST /api/actuals"
    )
    # 50,000 delay rows at full float precision with all three id columns are ~5.6 MB.
    max_body_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="largest request body, in bytes (413 beyond it, before it is read)",
    )
    # Dataset uploads stream to a temporary file, never into memory: their own, larger limit.
    max_dataset_bytes: int = Field(
        2 * 1024**3,
        ge=1024,
        description="largest dataset file POSTed to .../datasets, in bytes (413 beyond it)",
    )

    # --- prediction log ------------------------------------------------------------------
    prediction_log_enabled: bool = Field(
        True, description="log every prediction (off only to measure the log's cost)"
    )
    log_batch_size: int = Field(500, ge=1, description="rows per group commit")
    log_flush_interval_ms: int = Field(50, ge=1, description="max time a row waits to be written")
    log_max_pending: int = Field(
        200_000,
        ge=1000,
        description="rows waiting in memory (DB down or writer behind) before the rest is spooled",
    )

    # --- model lifecycle -----------------------------------------------------------------
    promotion_margin: float = Field(
        0.0, ge=0, description="how much worse than the champion a challenger may be"
    )
    holdout_fraction: float = Field(
        0.2, gt=0.05, lt=0.5, description="share of a dataset kept to judge challenger and champion"
    )
    champion_poll_seconds: float = Field(
        2.0, gt=0, description="how fast every API process picks up a new champion"
    )
    delay_tolerance_minutes: float = Field(
        DELAY_TOLERANCE_MINUTES,
        gt=0,
        description="delay family: a prediction is accurate when |error| < this",
    )

    # --- challenger arm: how a version that passed the offline gate is judged live --------
    # A declared model's [challenger] section replaces these for that model.
    challenger_policy: Literal["direct", "shadow", "canary", "shadow-then-canary"] = Field(
        "direct",
        description="what a version that passed the offline gate does: direct (champion at "
        "once), shadow (scored beside the champion, not answered), canary (a growing share of "
        "traffic), shadow-then-canary",
    )
    canary_steps: tuple[float, ...] = Field(
        (5.0, 25.0, 50.0, 100.0),
        min_length=1,
        description="the challenger's share of ML traffic (%) at each canary step, as JSON, e.g. "
        "[5,25,50,100]; advancing past the last step makes it champion",
    )
    challenger_shadow_rate: float = Field(
        0.5, gt=0, le=1, description="share of the champion's requests the challenger also scores"
    )
    challenger_min_labelled: int = Field(
        200, ge=10, description="outcomes each arm needs before the analysis may decide"
    )
    challenger_alpha: float = Field(
        0.05, gt=0, lt=0.5, description="significance level of the live comparison"
    )
    challenger_min_step_minutes: float = Field(
        10.0, ge=0, description="shortest time a canary step (or the shadow phase) lasts"
    )
    challenger_max_hours: float = Field(
        168.0, gt=0, description="a challenger still inconclusive after this long is aborted"
    )
    challenger_max_error_rate: float = Field(
        0.05, ge=0, le=1, description="guardrail: challenger failure rate that aborts at once"
    )
    challenger_max_latency_ratio: float = Field(
        3.0, gt=1, description="guardrail: challenger mean latency / champion's that aborts"
    )
    challenger_max_fallback_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="guardrail: share of the challenger's rows the fallback answered that aborts",
    )
    challenger_approval: bool = Field(
        False, description="the last step (becoming champion) waits for a human approval"
    )
    challenger_approval_timeout_minutes: float = Field(
        60.0, gt=0, description="an approval not given within this aborts the challenger"
    )
    champion_watch_hours: float = Field(
        24.0,
        ge=0,
        description="after a promotion, how long the new champion is watched live (0: not watched)",
    )
    champion_rollback_margin: float = Field(
        0.05,
        ge=0,
        description="the new champion is rolled back when its live gate metric is "
        "worse than the previous champion's by more than this",
    )

    # --- declared models (preview: listed and checked at start, not served yet) -----------
    models_dir: Path | None = Field(
        None,
        description="folder of model declarations (.toml files) added to the built-in ones; unset: "
        "built-ins only. A malformed declaration stops the API's start",
    )
    allowed_estimator_prefixes: str = Field(
        "",
        description="module prefixes declarations may import estimators from besides sklearn "
        "(comma-separated, e.g. xgboost,lightgbm): importing a module runs its code",
    )

    # --- rollout (initial values; afterwards the DB row is the truth) ---------------------
    ml_enabled: bool = Field(True, description="initial rollout flag: ML on")
    ml_traffic_percentage: float = Field(
        100.0, ge=0, le=100, description="initial rollout share of traffic for ML"
    )
    fallback_on_error: bool = Field(
        True, description="initial: answer with the fallback when ML fails (else 503)"
    )
    rollout_cache_seconds: float = Field(
        1.0, ge=0, description="how stale a replica's view of the rollout flag may be"
    )
    shadow_sample_rate: float = Field(
        0.1, ge=0, le=1, description="initial share of requests answered by both ML and fallback"
    )
    rollout_error_alert_rate: float = Field(
        0.2, gt=0, le=1, description="ML error rate that makes the rollout critical and alerts"
    )
    rollout_error_alert_min_requests: int = Field(
        100, ge=1, description="ML requests needed before the error rate is judged"
    )

    # --- monitoring thresholds (the performance alert and the retrain rule) -------------
    mae_threshold: float = Field(
        3.0, description="regression (delay): an MAE at or above this alerts"
    )
    rmse_threshold: float = Field(
        4.0,
        description="regression (delay): an RMSE at or above this alerts; above it, with drift, "
        "retrains",
    )
    r2_threshold: float = Field(
        0.65,
        description="regression (delay): an R² at or below this alerts; below it, with drift, "
        "retrains",
    )
    accuracy_threshold: float = Field(
        0.80,
        description="an accuracy rate (and a classifier's F1) at or below this alerts; a "
        "classifier's accuracy below it, with drift, retrains",
    )
    latency_threshold_ms: float = Field(
        150.0, description="an average prediction time (ms) at or above this alerts"
    )
    anomaly_threshold: float = Field(5.0, description="an error above this is an anomaly")
    drift_share: float = Field(
        0.5, gt=0, le=1, description="share of drifted features that makes the dataset drifted"
    )
    # Concept drift: the inputs look the same but the model is wrong more often. 3 windows of
    # 8 h cover the last 24 h, the alert window and the retrain flow's training window: the
    # champion must fail its retrain limit in every third of the day, so one bad hour (a
    # burst of odd requests) never retrains, a day of it does.
    degradation_windows: int = Field(
        3,
        ge=1,
        le=48,
        description="retrain without input drift when the champion's retrain limit is crossed "
        "in this many consecutive windows (the newest ending now)",
    )
    degradation_window_hours: float = Field(
        8.0, gt=0, le=24 * 7, description="length of each of those windows, in hours"
    )
    degradation_min_labelled: int = Field(
        50,
        ge=1,
        description="outcomes a window needs for its realised figures to count; with fewer, "
        "the estimated figures judge it, and without them the window is unknown (never bad)",
    )

    # --- alerts --------------------------------------------------------------------------
    discord_webhook_url: SecretStr | None = Field(
        None, description="Discord webhook; unset: alerts go to the log"
    )
    alert_cooldown_seconds: float = Field(
        600.0, description="alerts with the same key inside this window are one incident"
    )

    # --- flows ---------------------------------------------------------------------------
    health_check_interval_seconds: int = Field(
        60, description="how often the health_check flow calls /health"
    )
    ground_truth_delay_seconds: float = Field(
        60.0,
        ge=0,
        description="how long after a prediction the built-in source reveals its outcome",
    )

    @field_validator("canary_steps")
    @classmethod
    def _check_canary_steps(cls, steps: tuple[float, ...]) -> tuple[float, ...]:
        return check_canary_steps(steps)

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, url: str) -> str:
        # Users paste URLs from docs and Heroku-style env vars; psycopg 3 is our driver.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("rate_limit_predict", "rate_limit_retrain")
    @classmethod
    def _check_rate_limit(cls, text: str) -> str:
        # A typo must stop the start, not answer 500 on the first request.
        from limits import parse

        try:
            parse(text)
        except ValueError:
            raise ValueError("expected a limit such as 6000/minute or 10/hour") from None
        return text

    @field_validator("rate_limit_storage_uri")
    @classmethod
    def _check_storage_uri(cls, uri: str) -> str:
        scheme = uri.partition("://")[0].lower()
        if scheme not in RATE_LIMIT_SCHEMES or "://" not in uri:
            # The URI itself is not repeated: it may hold a Redis password.
            raise ValueError(f"expected a URI starting with one of {sorted(RATE_LIMIT_SCHEMES)}")
        return uri

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, text: str) -> str:
        networks = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                networks.append(str(ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or a CIDR network") from None
        return ",".join(networks)

    @field_validator("models_dir", mode="before")
    @classmethod
    def _blank_models_dir_is_none(cls, value: object) -> object:
        # A blank value (docker-compose's ${VAR:-} when unset) means "built-ins only", not
        # Path(""), which is the working directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("discord_webhook_url")
    @classmethod
    def _blank_webhook_is_none(cls, url: SecretStr | None) -> SecretStr | None:
        # docker-compose passes ${DISCORD_WEBHOOK_URL:-}: empty means "no Discord".
        if url is not None and not url.get_secret_value().strip():
            return None
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
        return f"{self.model_name_prefix}_{self.family}"

    @property
    def estimator_prefixes(self) -> tuple[str, ...]:
        """The configured extra import prefixes of declared estimators, blanks dropped."""
        return tuple(p.strip() for p in self.allowed_estimator_prefixes.split(",") if p.strip())

    @property
    def effective_api_key(self) -> str:
        """The key admin routes expect; the development default never leaves development."""
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        if self.environment == "production":
            raise RuntimeError("IA_CONTINU_API_KEY must be set in production")
        return DEV_API_KEY

    def check_production(self) -> None:
        """Refuse to start in production with a missing, development or guessable key."""
        if self.environment != "production":
            return
        key = self.api_key.get_secret_value() if self.api_key else ""
        problem = api_key_problem(key)
        if problem:
            # The key itself is never part of the message.
            raise RuntimeError(
                f"IA_CONTINU_API_KEY is refused in production: {problem}. Use a random key of "
                f"{MIN_KEY_LENGTH}+ characters without spaces, e.g. "
                '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
            )

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


@lru_cache
def get_settings() -> Settings:
    return Settings()
