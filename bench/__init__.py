"""Benchmarks: ``python -m bench.<name> [--quick]``, one JSON line per figure."""
