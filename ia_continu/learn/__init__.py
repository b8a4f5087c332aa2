"""Learn again: datasets, training with its gate, the registry of versions."""
