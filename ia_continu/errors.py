"""Every error the domain raises on purpose, in one hierarchy that the API maps to HTTP once.

    IaContinuError
    ├── InvalidInput              422  the caller sent something the domain refuses
    │   ├── InvalidFeatures            wrong shape, name, type or out-of-domain feature value
    │   ├── InvalidActual              an outcome the model's task cannot have
    │   ├── UntrainableDataset         a dataset that cannot train the model (one class...)
    │   └── UnreadableDataset          an imported file that is not the format it claims
    ├── NotFound                  404  a thing named by the caller does not exist
    │   ├── UnknownModel               a model name no declaration gives
    │   ├── UnknownVersion             a model version the registry does not have
    │   └── UnknownDataset             a dataset id with no rows
    ├── Conflict                  409  the request is valid but the state does not allow it
    │   ├── NothingToRollBack          no earlier champion
    │   ├── NoDatasetYet               retrain before any data exists
    │   ├── NoSimulator                /generate for a model that only learns from imports
    │   ├── NoLiveChallenger           abort/advance with no challenger arm live
    │   ├── ChallengerRefused          a challenger the model's policy or state does not allow
    │   └── DuplicateDataset           the same file imported twice for one model
    └── Unavailable               503  the service cannot answer now
        └── ModelFailure               ML failed and the rollout says not to fall back

Each class carries its HTTP status (``status_code``) so that ``api/errors.py`` needs one
handler, and the message is written for the person who reads the 4xx ``detail``.
"""

from __future__ import annotations


class IaContinuError(Exception):
    """Base of every deliberate domain error."""

    status_code = 500


class InvalidInput(IaContinuError, ValueError):
    status_code = 422


class InvalidFeatures(InvalidInput):
    """Wrong shape, name or type of features, or a value outside its domain."""


class InvalidActual(InvalidInput):
    """An outcome the model's task cannot have (a label that is not 0/1, a huge number)."""


class UntrainableDataset(InvalidInput):
    """The dataset cannot train the model: too few rows, one class, no variation."""


class UnreadableDataset(InvalidInput):
    """An imported file that cannot be read as its format (broken CSV, not Parquet...)."""


class NotFound(IaContinuError, LookupError):
    status_code = 404


class UnknownModel(NotFound):
    """A model name that no declaration (built in or in IA_CONTINU_MODELS_DIR) gives."""


class UnknownVersion(NotFound):
    """A model version the registry does not have (or cannot load)."""


class UnknownDataset(NotFound):
    """A dataset id that has no rows."""


class Conflict(IaContinuError):
    status_code = 409


class NothingToRollBack(Conflict, LookupError):
    """There is no earlier champion to go back to."""


class NoDatasetYet(Conflict, LookupError):
    """Retrain was asked before any dataset exists."""


class NoSimulator(Conflict):
    """``/generate`` for a model without a simulator: its data must be imported."""


class NoLiveChallenger(Conflict):
    """No challenger arm is live for this model (nothing to abort or advance)."""


class ChallengerRefused(Conflict):
    """A challenger the model cannot take: its policy is direct, or it is the champion."""


class VersionNeedsFeature(Conflict):
    """A model version was trained on a feature the current declaration no longer has."""


class DuplicateDataset(Conflict):
    """This model already has a dataset with the same content (same SHA-256)."""


class Unavailable(IaContinuError, RuntimeError):
    status_code = 503


class ModelFailure(Unavailable):
    """The ML model failed and the rollout says not to fall back."""
