"""Model families: what the loop needs of a model (data, pipeline, fallback, metrics, scoring).

``get_family`` answers for any model name: the two built-in Python families here, every other
declared model through ``ia_continu.declared.family.DeclaredFamily`` (see ia_continu.catalog).
"""

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
    """The model ``name``, tuned by ``settings`` (e.g. the delay family's accuracy tolerance);
    without them, by the defaults: enough to sample data or read the family's task.

    Raises UnknownModel for a name no declaration gives (``settings`` say which folder of
    declarations counts besides the built-ins)."""
    code = _FAMILIES.get(name)  # type: ignore[arg-type]  # a StrEnum key matches its text
    if code is not None:
        return code.configured(settings)
    from ia_continu.catalog import catalog

    return catalog(settings).declared_family(str(name))


__all__ = ["ModelFamily", "get_family"]
