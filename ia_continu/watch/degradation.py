"""The champion's recent windows, as the sustained-degradation rule reads them.

``degradation_windows`` consecutive windows of ``degradation_window_hours``, the newest ending
now, oldest first. Each holds the figures of the rows the champion answered in it (realised:
the rows whose outcome is known) and, for the rows still waiting for theirs, the estimated
figures when an estimator can give them. ``ia_continu.decide`` judges them; this module only
reads the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.decide import WindowFigures
from ia_continu.families import ModelFamily
from ia_continu.store.tables import utcnow
from ia_continu.watch.quality import Figures, figures_between


def window_bounds(settings: Settings, now: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` of each window, oldest first; the last one ends at ``now``."""
    width = timedelta(hours=settings.degradation_window_hours)
    k = settings.degradation_windows
    return [(now - (k - i) * width, now - (k - i - 1) * width) for i in range(k)]


def estimated_figures(
    session: Session, settings: Settings, start: datetime, end: datetime
) -> Figures | None:
    """The estimated figures of the window's rows still waiting for outcomes, or None
    (no estimator for this model, or nothing to estimate)."""
    return None


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
        out.append(
            WindowFigures(
                start=start.isoformat(),
                realised=figures_between(session, family, start, end, version=version),
                estimated=estimated_figures(session, settings, start, end),
            )
        )
    return out
