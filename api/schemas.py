"""Request and response schemas of the API."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
)

from ia_continu.challenge.analysis import Comparison
from ia_continu.learn.registry import (
    Champion,
    ChampionChange,
    ChampionHistoryEntry,
    ModelEventRecord,
    ModelVersionInfo,
    UtcTimestamp,
)
from ia_continu.vocab import ArmMode, ArmStatus, Decision, ServedBy

# A feature: finite, and bounded so that no int is too large for a float and no product in
# a model overflows. Each family's validate() applies its own, tighter, domain bounds.
FEATURE_LIMIT = 10**12
Number = (
    Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-FEATURE_LIMIT, le=FEATURE_LIMIT)]
    | Annotated[StrictInt, Field(ge=-FEATURE_LIMIT, le=FEATURE_LIMIT)]
)
# The database's INTEGER (PostgreSQL's is 32-bit): ids and seeds that it can store.
INT32_MAX = 2**31 - 1

# Control characters (C0, DEL, C1) and lone surrogates: no id needs them, and they are what a
# database refuses (PostgreSQL text takes no NUL; no driver can encode a lone surrogate) or
# what breaks the logs and CSV exports ids end up in.
_FORBIDDEN_IN_ID = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
IDENTIFIER_MAX = 100  # the width of the id columns (String(100))


def _forbidden_char(value: str) -> str | None:
    bad = _FORBIDDEN_IN_ID.search(value)
    if bad is None:
        return None
    return (
        "must not contain control characters or lone surrogates "
        f"(U+{ord(bad.group()):04X} at position {bad.start()})"
    )


def identifier_problem(value: object) -> str | None:
    """Why ``value`` is not a valid identifier (request, booking or driver id), or None.

    The one rule for ids, used by the pydantic ``Identifier`` type and by the hand-parsed
    ``/predict/batch`` path alike: a string of 1..100 characters, no control character, no
    lone surrogate. The message never quotes the value: it may not be printable.
    """
    if not isinstance(value, str):
        return "must be a string"
    if not 0 < len(value) <= IDENTIFIER_MAX:
        return f"must be 1..{IDENTIFIER_MAX} characters long"
    return _forbidden_char(value)


def first_invalid_identifier(values: list[Any]) -> tuple[int, str] | None:
    """The first entry of a list of ids (None entries allowed) breaking the rule, and why.

    ``identifier_problem`` per entry, with a fast path for the common all-valid list: one
    regex pass over the joined strings costs ~0.6 ms for 10,000 ids, a loop ~1.5 ms.
    """
    present = [v for v in values if v is not None]
    if not present:
        return None
    if set(map(type, present)) == {str}:
        lengths = set(map(len, present))
        if (
            min(lengths) > 0
            and max(lengths) <= IDENTIFIER_MAX
            and _FORBIDDEN_IN_ID.search("".join(present)) is None
        ):
            return None
    for i, value in enumerate(values):
        if value is not None and (problem := identifier_problem(value)) is not None:
            return i, problem
    return None


def _check_identifier(value: Any) -> Any:
    # Runs before pydantic's own str parsing: a lone surrogate would otherwise be refused with
    # a vague "unable to parse raw data as a unicode string". Type and length are left to the
    # Field below (strings only: no int -> str coercion, as in /predict/batch).
    if isinstance(value, str):
        problem = _forbidden_char(value)
        if problem is not None:
            raise ValueError(f"identifier {problem}")
    return value


Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=IDENTIFIER_MAX,
        # Documents the rule for clients and fuzzers; enforced by _check_identifier.
        json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"},
    ),
    BeforeValidator(_check_identifier),
]

# Free text (reasons): any printable text, but no NUL (PostgreSQL text refuses it) and no
# lone surrogate (no driver can encode it), which would fail only when the row is written.
_FORBIDDEN_IN_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def _check_text(value: Any) -> Any:
    if isinstance(value, str) and (bad := _FORBIDDEN_IN_TEXT.search(value)) is not None:
        raise ValueError(
            f"text must not contain NUL or lone surrogates "
            f"(U+{ord(bad.group()):04X} at position {bad.start()})"
        )
    return value


Text = Annotated[str, BeforeValidator(_check_text)]


class ServedModelHealth(BaseModel):
    """One model this process serves (the default, and every other one used since start)."""

    name: str
    champion_version: str | None = Field(description="the registry's champion")
    served_version: str | None = Field(description="the version loaded here (None: fallback)")
    serving_engine: str | None = Field(description="onnxruntime or sklearn; None: fallback")
    load_error: str | None = Field(description="why the champion is not served, if it is not")


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "error"]
    timestamp: str
    version: str
    family: str
    champion_version: str | None
    checks: dict[str, Any]
    reason: str | None = None
    models: list[ServedModelHealth] = Field(
        default_factory=list, description="the models this process serves, the default first"
    )


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    samples: int = Field(1000, ge=100, le=10_000, description="rows to draw (100..10000)")
    drift: bool | Annotated[float, Field(ge=0, le=5)] | None = Field(
        None,
        description="None: the demo world's clock (odd hours drift by 0.5); true/false to force; "
        "a number sets the shift",
    )
    seed: int | None = Field(
        None, ge=0, le=INT32_MAX, description="random seed, for repeatable data (stored)"
    )


class GeneratePublic(BaseModel):
    generation_id: int
    samples_created: int
    family: str
    drift: bool
    timestamp: str


class PredictContext(BaseModel):
    model_config = ConfigDict(extra="forbid")
    booking_id: Identifier | None = None
    driver_id: Identifier | None = None


# A declared model's feature value: a number, a boolean, or a category's text.
FeatureValue = Number | StrictBool | Annotated[str, Field(max_length=200)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[FeatureValue] | dict[str, FeatureValue] = Field(
        description="Feature values in the model's declared order, or by name",
        examples=[[0.5, -1.2]],
    )
    request_id: Identifier | None = Field(
        None,
        description="Sticky rollout key and the join key for actual outcomes; generated if absent",
    )
    booking_id: Identifier | None = None
    driver_id: Identifier | None = None
    context: PredictContext | None = None


class PredictionPublic(BaseModel):
    prediction: float | int
    model_version: str | None
    confidence: float
    timestamp: str
    request_id: str
    served_by: ServedBy
    decision: Decision
    latency_ms: float
    probability: float | None = None
    risk_level: str | None = None
    contributing_factors: dict[str, float] | None = None


class PredictBatchRequest(BaseModel):
    """Column-oriented, so 10,000 rows parse straight into numpy (documentation schema)."""

    features: list[list[Number]] = Field(min_length=1, description="one row per prediction")
    request_ids: list[Identifier | None] | None = None
    booking_ids: list[Identifier | None] | None = None
    driver_ids: list[Identifier | None] | None = None


class PredictBatchPublic(BaseModel):
    count: int
    model_version: str | None
    timestamp: str
    request_ids: list[str]
    predictions: list[float | int]
    confidence: list[float]
    served_by: list[ServedBy]
    decision: list[Decision]
    risk_level: list[str | None] | None = None
    model_versions: list[str] | None = Field(
        None,
        description="each row's answering version (or 'fallback'), sent only when a canary "
        "challenger answered some rows: model_version is then the champion's",
    )


class RetrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation_id: int | None = Field(
        None, ge=1, le=INT32_MAX, description="dataset to train on; latest if absent"
    )
    force: bool = Field(False, description="promote even if the challenger is worse")
    reason: Text = Field("manual", max_length=500)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field("manual promotion", max_length=500)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field("manual rollback", max_length=500)


class ChampionPublic(Champion):
    served_version: str | None = Field(description="the version this API process serves now")


class ChampionChangePublic(ChampionPublic, ChampionChange):
    """The answer of a promote or a rollback."""


class ModelsPublic(ChampionPublic):
    model: str = Field(description="the model's name")
    task: str = Field(description="classification (binary), multiclass or regression")
    serving_engine: str | None = Field(
        description="what computes the served champion's answers: numpy (built-in linear "
        "code), onnxruntime (converted and checked against scikit-learn on the holdout) or "
        "sklearn (conversion failed or disagreed); null while the fallback serves"
    )
    onnx: dict[str, Any] | None = Field(
        None, description="the served version's ONNX conversion check (declared models)"
    )
    versions: list[ModelVersionInfo] = Field(description="newest first")
    history: list[ChampionHistoryEntry] = Field(description="changes of champion, newest first")


# --- the ML rollout flag (/api/feature-flags) ---------------------------------------------


class EnableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    percentage: float | None = Field(
        None, ge=0, le=100, description="keep the current share if absent"
    )


class PercentageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    percentage: float = Field(ge=0, le=100, description="share of requests routed to ML, 0..100")


class ConfigRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    fallback_on_error: bool | None = Field(
        None, description="answer with the heuristic when ML fails"
    )
    shadow_rate: float | None = Field(
        None, ge=0, le=1, description="share of requests scored by both ML and the fallback"
    )


class RolloutConfigPublic(BaseModel):
    """The flag, under the names of the environment variables that set its initial value."""

    ml_enabled: bool = Field(serialization_alias="ML_ENABLED")
    ml_traffic_percentage: float = Field(serialization_alias="ML_TRAFFIC_PERCENTAGE")
    fallback_on_error: bool = Field(serialization_alias="FALLBACK_ON_ERROR")
    shadow_rate: float = Field(serialization_alias="SHADOW_RATE")


class RolloutStatsPublic(BaseModel):
    total_requests: int
    ml_requests: int
    ml_successes: int
    ml_failures: int
    fallback_requests: int
    shadow_requests: int
    ml_success_rate: float
    ml_usage_rate: float
    since: str


class RolloutHealthPublic(BaseModel):
    status: Literal["healthy", "degraded", "critical"]
    reason: str
    success_rate: float
    error_rate: float
    ml_requests: int


class RolloutStatusPublic(BaseModel):
    family: str
    config: RolloutConfigPublic
    stats: RolloutStatsPublic
    health: RolloutHealthPublic
    updated_at: str


class RolloutChangePublic(BaseModel):
    success: bool
    message: str
    status: RolloutStatusPublic


# --- the challenger arm (/challenger) ------------------------------------------------------


class ChallengerStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(
        min_length=1, max_length=50, description="a registered version (GET /models)"
    )
    reason: Text = Field("started by an operator", max_length=500)


class ChallengerActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=500, description="why, for the audit log")


class ChallengerPolicyPublic(BaseModel):
    """How this model's challengers are judged live (its settings view, or its declaration's
    ``[challenger]`` section)."""

    name: Literal["direct", "shadow", "canary", "shadow-then-canary"]
    steps: list[float] = Field(description="canary shares of the ML traffic, %")
    shadow_rate: float
    min_labelled: int
    alpha: float
    min_step_minutes: float
    max_hours: float
    max_error_rate: float
    max_latency_ratio: float
    max_fallback_share: float
    approval: bool
    approval_timeout_minutes: float
    watch_hours: float
    rollback_margin: float


class ChallengerArmPublic(BaseModel):
    """One challenger arm: live, or how it ended."""

    id: int
    version: str
    champion_version: str | None
    policy: str
    mode: ArmMode
    step: int = Field(description="canary step index; -1 in shadow")
    percentage: float = Field(description="share of the ML traffic the challenger answers, %")
    shadow_rate: float
    status: ArmStatus
    reason: str
    last_verdict: dict[str, Any] | None = Field(
        description="the last analysis' verdict (advance, hold or abort), its reason and numbers"
    )
    started_at: UtcTimestamp
    step_started_at: UtcTimestamp
    ended_at: UtcTimestamp | None


class ChallengerPublic(BaseModel):
    """The model's challenger arm: the live one, its comparison and the recent ones."""

    model: str
    champion_version: str | None
    policy: ChallengerPolicyPublic
    active: ChallengerArmPublic | None = Field(description="the live arm; null if none")
    served_challenger: str | None = Field(
        description="the challenger version this API process has loaded (null: none, or it "
        "failed to load: see challenger_error)"
    )
    challenger_error: str | None
    comparison: Comparison | None = Field(
        description="the live comparison of the two arms on the same window (per-arm "
        "figures, test, p-value, difference, the verdict the analysis would give now); "
        "null without a live arm"
    )
    comparison_error: str | None = Field(
        None, description="why the comparison could not be computed, if it failed"
    )
    last_verdict: dict[str, Any] | None = Field(
        description="the newest arm's last verdict, live or ended"
    )
    recent: list[ChallengerArmPublic] = Field(description="newest first")
    steps: list[ModelEventRecord] = Field(
        description="the audit rows of the challenger steps (started, advanced, held, "
        "aborted, promoted, auto_rollback), newest first"
    )


class ChallengerChangePublic(BaseModel):
    """The answer of a start, abort or advance."""

    message: str
    outcome: Literal["started", "aborted", "step", "promoted"]
    status: ChallengerPublic
