"""Algorithms as policy objects with no I/O: hard-example mining, aggregation, ..."""
