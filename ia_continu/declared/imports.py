"""Turn a declaration's ``class = "sklearn.ensemble.RandomForestRegressor"`` into the class,
importing only from an allow-list of module prefixes.

Importing a module runs its code, so a declaration file must not be able to name any module:
only ``sklearn.`` by default, plus the prefixes the operator configures (``xgboost.``,
``lightgbm.``, an in-house package...). The class found must also be *defined* under an
allowed prefix (a re-export such as ``sklearn.utils.something`` pointing at a foreign
object does not pass) and must look like a scikit-learn estimator: ``fit`` plus ``predict``
for the model, ``fit`` plus ``transform`` for a preprocessing step, ``fit`` for an estimator
passed as a parameter (``estimator = { class = "sklearn.tree.DecisionTreeRegressor" }``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable
from typing import Any, Literal

DEFAULT_PREFIXES: tuple[str, ...] = ("sklearn.",)
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")

Role = Literal["estimator", "transformer", "component"]


class ImportRefused(ValueError):
    """The class path is not allowed, not found or not an estimator; the message says which."""


def normalise_prefixes(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The default prefixes plus ``extra``; each ends with a dot so that ``sklearn`` cannot
    be matched by ``sklearnx``."""
    prefixes = list(DEFAULT_PREFIXES)
    for prefix in extra:
        prefix = prefix.strip()
        if not prefix:
            continue
        prefix = prefix if prefix.endswith(".") else prefix + "."
        if prefix not in prefixes:
            prefixes.append(prefix)
    return tuple(prefixes)


def _allowed(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path.startswith(p) for p in prefixes)


def resolve_class(path: str, prefixes: tuple[str, ...], role: Role = "estimator") -> type[Any]:
    """The class named by ``path``; raise ImportRefused saying why not."""
    if not isinstance(path, str) or not _PATH.match(path):
        raise ImportRefused(f"{path!r} is not an import path such as sklearn.linear_model.Ridge")
    if any(part.startswith("__") for part in path.split(".")):
        raise ImportRefused(f"{path!r}: dunder names are not allowed")
    if not _allowed(path, prefixes):
        raise ImportRefused(
            f"{path!r} is outside the allowed modules ({', '.join(prefixes)}); "
            "other prefixes must be configured explicitly"
        )
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportRefused(
            f"{path!r}: module {module_name!r} cannot be imported ({exc})"
        ) from None
    obj = getattr(module, class_name, None)
    if obj is None:
        raise ImportRefused(f"{path!r}: {module_name} has no {class_name!r}")
    if not inspect.isclass(obj):
        raise ImportRefused(f"{path!r} is not a class")
    if not _allowed(obj.__module__ + ".", prefixes):
        raise ImportRefused(f"{path!r} is defined in {obj.__module__}, outside the allowed modules")
    needed = {"estimator": ("fit", "predict"), "transformer": ("fit", "transform")}.get(
        role, ("fit",)
    )
    missing = [m for m in needed if not callable(getattr(obj, m, None))]
    if missing:
        what = {"estimator": "a model", "transformer": "a preprocessing step"}.get(
            role, "a parameter"
        )
        raise ImportRefused(
            f"{path!r} cannot be {what}: it has no {' or '.join(missing)} "
            "(a scikit-learn compatible class is needed)"
        )
    return obj
