"""flows/backfill_actuals.py: outcomes due in synthetic_outcomes land on their predictions."""

from __future__ import annotations

from sqlalchemy import func, select

from flows.backfill_actuals import backfill_actuals
from ia_continu.sim import simulate_traffic
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog
from tests.conftest import train
from tests.flows.conftest import flush


def test_fills_only_outcomes_already_known(flow_settings, client, engine):
    train(client)
    due = simulate_traffic(flow_settings, engine, client, 300, seed=3, delay_seconds=0)
    later = simulate_traffic(flow_settings, engine, client, 100, seed=4, delay_seconds=3600)
    flush(client)

    summary = backfill_actuals()
    assert summary == {"pending": 400, "found": 300, "updated": 300}

    with session_scope(engine) as session:
        filled = dict(
            session.execute(
                select(PredictionLog.request_id, PredictionLog.actual).where(
                    PredictionLog.actual.is_not(None)
                )
            ).all()
        )
        assert set(filled) == set(due.request_ids)
        assert [filled[r] for r in due.request_ids] == due.actuals
        waiting = session.scalar(
            select(func.count())
            .select_from(PredictionLog)
            .where(PredictionLog.request_id.in_(later.request_ids), PredictionLog.actual.is_(None))
        )
        assert waiting == 100

    # Nothing new is due: a second run finds the 100 pending and writes nothing.
    assert backfill_actuals() == {"pending": 100, "found": 0, "updated": 0}
