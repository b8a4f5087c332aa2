"""Answer requests: the champion in memory, the rollout flag, the predictor."""
