"""Benchmarks of issue 6 (not part of the test suite): python -m bench.run."""
