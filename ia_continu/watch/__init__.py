"""Watch the model: quality over windows, drift, rollout health."""
