"""Benchmarks: `python -m bench.relay` (.idle, .routing, .setup, .all); see docs/benchmarks.md."""
