"""The HTTP face of ia-continu: thin FastAPI routes over the ``ia_continu`` domain layer."""
