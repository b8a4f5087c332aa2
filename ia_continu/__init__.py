"""ia-continu: the domain layer (data, models, registry, prediction log, rollout, metrics).

Plain Python that the API routes and the Prefect flows both call; nothing here speaks HTTP.
"""

__version__ = "0.1.0"
