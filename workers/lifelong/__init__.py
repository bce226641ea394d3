"""Lifelong-learning workers that need no user code: ``train``, ``eval``, ``infer`` and ``kb``."""
