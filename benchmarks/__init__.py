"""Benchmarks: run as modules (python -m benchmarks.generation). Not tests: they print figures."""
