"""schema_id: one FeatureSchema row per (model, ordered names), whoever asks first."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ia_continu.store.schemas import schema_id
from ia_continu.store.tables import FeatureSchema


def test_schema_id_is_get_or_create_per_model_and_order(engine) -> None:
    with Session(engine) as a, a.begin():
        first = schema_id(a, "iris", ["x", "y"])
    with Session(engine) as b, b.begin():
        assert schema_id(b, "iris", ["x", "y"]) == first
        assert schema_id(b, "iris", ["y", "x"]) != first  # order is part of the schema
        assert schema_id(b, "other", ["x", "y"]) != first
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(FeatureSchema)) == 3
        assert s.get(FeatureSchema, first).names == ["x", "y"]
