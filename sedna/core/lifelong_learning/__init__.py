"""Lifelong learning: a knowledge base of task models that grows as new tasks appear.

Public surface: :class:`LifelongLearning` (Sedna's entry point). The knowledge base service
and client live in :mod:`sedna.service.kb`; the algorithms in :mod:`sedna.algorithms.lifelong`.
"""

from sedna.core.lifelong_learning.lifelong_learning import LifelongLearning
from sedna.core.lifelong_learning.reporting import OWNER_KIND

__all__ = ["OWNER_KIND", "LifelongLearning"]
