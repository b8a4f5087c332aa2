"""Sub-commands of the ``ia-continu`` command line, one module each."""
