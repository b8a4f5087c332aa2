"""Learn the truth: outcomes joined to predictions, and where outcomes come from."""
