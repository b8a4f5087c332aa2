"""Request and response schemas of the API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

Number = StrictFloat | StrictInt
Identifier = Annotated[str, Field(min_length=1, max_length=100)]


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "error"]
    timestamp: str
    version: str
    family: str
    champion_version: str | None
    checks: dict[str, Any]
    reason: str | None = None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    samples: int = Field(1000, ge=100, le=10_000, description="rows to draw (100..10000)")
    drift: bool | Annotated[float, Field(ge=0, le=5)] | None = Field(
        None,
        description="None: seed 004's clock (odd hours drift by 0.5); true/false to force; "
        "a number sets the shift",
    )
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, description="random seed, for repeatable data"
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


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[Number] | dict[str, Number] = Field(
        description="Feature values in the family's order, or by name",
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
    served_by: Literal["ml", "fallback"]
    decision: str
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
    served_by: list[str]
    decision: list[str]
    risk_level: list[str | None] | None = None


class RetrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation_id: int | None = Field(
        None, ge=1, description="dataset to train on; latest if absent"
    )
    force: bool = Field(False, description="promote even if the challenger is worse")
    reason: str = Field("manual", max_length=500)


class RetrainPublic(BaseModel):
    status: Literal["promoted", "rejected"]
    promoted: bool
    reason: str
    model_version: str
    champion_version: str | None
    previous_champion: str | None
    training_samples: int
    holdout_samples: int
    generation_id: int
    accuracy: float
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    run_id: str
    run_name: str
    duration_s: float
    timestamp: str


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("manual promotion", max_length=500)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("manual rollback", max_length=500)


class ChampionPublic(BaseModel):
    family: str
    registered_model: str
    champion_version: str | None
    previous_version: str | None
    served_version: str | None


class ModelsPublic(ChampionPublic):
    versions: list[dict[str, Any]]
    history: list[dict[str, Any]]
