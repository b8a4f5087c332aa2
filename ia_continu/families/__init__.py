"""Model families: what a deployment predicts. One family is served per deployment."""

from __future__ import annotations

from ia_continu.config import Family
from ia_continu.families.base import ModelFamily
from ia_continu.families.classification import ClassificationFamily
from ia_continu.families.delay import DelayFamily

_FAMILIES: dict[Family, ModelFamily] = {
    Family.classification: ClassificationFamily(),
    Family.delay: DelayFamily(),
}


def get_family(name: Family | str) -> ModelFamily:
    return _FAMILIES[Family(name)]


__all__ = ["ModelFamily", "get_family"]
