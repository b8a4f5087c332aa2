"""``python -m ia_continu.cli``: the same command line as the ``ia-continu`` script."""

from ia_continu.cli import app

app()
