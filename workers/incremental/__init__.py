"""Incremental-learning workers for a numpy digits model: ``train``, ``eval``, ``infer``."""
