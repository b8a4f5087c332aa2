"""Model families: what a deployment predicts. One family is served per deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ia_continu.config import Family
from ia_continu.families.base import ModelFamily
from ia_continu.families.classification import ClassificationFamily
from ia_continu.families.delay import DelayFamily

if TYPE_CHECKING:
    from ia_continu.config import Settings

_FAMILIES: dict[Family, type[ModelFamily]] = {
    Family.classification: ClassificationFamily,
    Family.delay: DelayFamily,
}


def get_family(name: Family | str, settings: Settings | None = None) -> ModelFamily:
    """The family ``name``, tuned by ``settings`` (e.g. the delay family's accuracy tolerance);
    without them, by the defaults: enough to sample data or read the family's task."""
    return _FAMILIES[Family(name)].configured(settings)


__all__ = ["ModelFamily", "get_family"]
