"""The champion's recent windows, as the sustained-degradation rule reads them.

``degradation_windows`` consecutive windows of ``degradation_window_hours``, the newest ending
now, oldest first. Each holds the figures of the rows the champion answered in it (realised:
the rows whose outcome is known) and, for the rows still waiting for theirs, the estimated
figures when an estimator can give them. ``ia_continu.decide`` judges them; this module only
reads the database.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.decide import WindowFigures
from ia_continu.families import ModelFamily
from ia_continu.store.tables import utcnow
from ia_continu.watch.quality import Figures, figures_between

log = logging.getLogger(__name__)


def window_bounds(settings: Settings, now: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` of each window, oldest first; the last one ends at ``now``."""
    width = timedelta(hours=settings.degradation_window_hours)
    k = settings.degradation_windows
    return [(now - (k - i) * width, now - (k - i - 1) * width) for i in range(k)]


def estimated_figures(
    session: Session, settings: Settings, version: str, start: datetime, end: datetime
) -> Figures | None:
    """The champion's estimated figure over the window (``ia_continu.watch.estimates``: CBPE's
    accuracy for a classifier, DLE's MAE for a regressor), or None: no row, no estimator for
    that version, or the estimator failed (an estimate informs the rule; it never breaks it)."""
    from ia_continu.watch.estimates import estimate_window

    try:
        found = estimate_window(session, settings, start, end)
    except Exception:
        log.warning("no estimate of %s over %s..%s", settings.family, start, end, exc_info=True)
        return None
    mine = [v for v in found.versions if v.model_version == version] if found else []
    if not mine or mine[0].status != "ok" or mine[0].estimated is None:
        return None
    figure = "accuracy_rate" if found and found.metric == "accuracy" else "mae"
    return Figures(count=mine[0].rows, **{figure: mine[0].estimated})


def recent_windows(
    session: Session,
    settings: Settings,
    family: ModelFamily,
    version: str | None,
    *,
    now: datetime | None = None,
) -> list[WindowFigures]:
    """The windows of the champion ``version`` (none without a champion: nothing to judge)."""
    if version is None:
        return []
    out = []
    for start, end in window_bounds(settings, now or utcnow()):
        realised = figures_between(session, family, start, end, version=version)
        # Estimates cost a read of the window's rows: only where the outcomes are too few.
        estimated = (
            estimated_figures(session, settings, version, start, end)
            if realised.labeled_count < settings.degradation_min_labelled
            else None
        )
        out.append(WindowFigures(start.isoformat(), realised, estimated))
    return out
