"""Ground truth: join actual outcomes to logged predictions, in bulk and idempotently.

Outcomes arrive by ``request_id`` (the id the prediction was answered under) or by a
context id such as ``booking_id`` (every prediction made for that booking gets the outcome).

A ``request_id`` may appear on several rows: each call is logged as its own row (a client
that retries, or sends the id twice in one batch, gets one row per answer), and an outcome
posted for that id applies to every row with it, since a retried request is the same request;
``updated`` then counts rows, not ids.

Set-based on purpose: the items go into a temporary table with one multi-row insert, then
one ``UPDATE ... FROM`` per key computes error and is_accurate in SQL (is_accurate is the
family's own ``accurate``, applied to the columns). A row-by-row loop costs a round trip per
item, which on PostgreSQL is minutes for the backfill's batch sizes. Re-posting the same
outcomes writes the same values again: the call is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    Column,
    Connection,
    Float,
    MetaData,
    String,
    Table,
    exists,
    func,
    select,
    text,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.errors import InvalidActual
from ia_continu.families import ModelFamily, get_family
from ia_continu.store.tables import PredictionLog, utcnow


class RecordedActuals(BaseModel):
    """What one call recorded: ``updated`` counts prediction rows (an id may name several)."""

    received: int  # distinct ids among the items
    updated: int
    unknown_request_ids: list[str]  # sorted: ids no prediction of the family has
    unknown_booking_ids: list[str]


def _dedupe(
    items: Iterable[Mapping[str, Any]], family: ModelFamily
) -> tuple[dict[str, float], dict[str, float]]:
    # The last value for an id wins: an UPDATE ... FROM with two source rows for one target
    # row would pick one of them arbitrarily.
    by_request: dict[str, float] = {}
    by_booking: dict[str, float] = {}
    for n, item in enumerate(items):
        try:  # a number in range, or a declared class label (stored as its index)
            actual = family.outcome_code(item.get("actual"))
        except InvalidActual as exc:
            raise InvalidActual(f"item {n}: 'actual' {exc}") from None
        request_id, booking_id = item.get("request_id"), item.get("booking_id")
        if request_id:
            by_request[str(request_id)] = actual
        elif booking_id:
            by_booking[str(booking_id)] = actual
        else:
            raise InvalidActual(f"item {n}: give a 'request_id' or a 'booking_id'")
    return by_request, by_booking


def _load(conn: Connection, tmp: Table, values: dict[str, float]) -> None:
    if conn.dialect.name == "postgresql":
        # Two array parameters and one statement: psycopg's executemany is a statement per
        # row (about 3x slower for 100k items); SQLite's executemany is a tight C loop.
        conn.execute(
            text(
                f"INSERT INTO {tmp.name} (key, actual) "
                "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:actuals AS float8[]))"
            ),
            {"keys": list(values), "actuals": list(values.values())},
        )
    else:
        conn.execute(tmp.insert(), [{"key": k, "actual": v} for k, v in values.items()])


def _apply(
    session: Session, family: ModelFamily, key: str, values: dict[str, float]
) -> tuple[int, list[str]]:
    """Load ``values`` into a temp table, update matching rows, return (rows, unknown ids)."""
    if not values:
        return 0, []
    conn = session.connection()
    tmp = Table(
        f"tmp_actuals_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("key", String(100), primary_key=True),
        Column("actual", Float, nullable=False),
        prefixes=["TEMPORARY"],
    )
    tmp.create(conn)
    try:
        _load(conn, tmp, values)
        target = getattr(PredictionLog, key)
        # The family test must not be usable as an index: without statistics, SQLite then
        # picks the (family, created_at) index over the id's and scans every row of the
        # family per id (100,000 actuals over 1M rows never finished). coalesce() hides it.
        same_family = func.coalesce(PredictionLog.family, "") == family.name
        now = utcnow()
        result = conn.execute(
            sql_update(PredictionLog)
            .where(target == tmp.c.key, same_family)
            .values(
                actual=tmp.c.actual,
                error=func.abs(PredictionLog.prediction - tmp.c.actual),
                is_accurate=family.accurate(PredictionLog.prediction.expression, tmp.c.actual),
                actual_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        known = exists().where(target == tmp.c.key, same_family)
        unknown = conn.scalars(select(tmp.c.key).where(~known).order_by(tmp.c.key)).all()
        return int(result.rowcount or 0), list(unknown)
    finally:
        tmp.drop(conn)


def record_actuals(
    session: Session, settings: Settings, items: Iterable[Mapping[str, Any]]
) -> RecordedActuals:
    """Fill actual, error, is_accurate and actual_at for every prediction an item names.

    ``items`` are mappings with ``actual`` and ``request_id`` or ``booking_id`` (request_id
    wins when both are given). Unknown ids are reported, not fatal. Raises InvalidActual for
    a malformed item before touching the database.
    """
    family = get_family(settings.family, settings)
    by_request, by_booking = _dedupe(items, family)
    updated_r, unknown_r = _apply(session, family, "request_id", by_request)
    updated_b, unknown_b = _apply(session, family, "booking_id", by_booking)
    return RecordedActuals(
        received=len(by_request) + len(by_booking),
        updated=updated_r + updated_b,
        unknown_request_ids=unknown_r,
        unknown_booking_ids=unknown_b,
    )
