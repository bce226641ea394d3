"""The printer columns of ``sedna get``, for other readers that must show the same figures.

``sedna get`` prints each kind's columns (the CRDs' ``additionalPrinterColumns``, kubectl-like
columns for core kinds) through a small JSONPath subset; the GM's dashboard imports this module
so its tables show exactly what the CLI prints.
"""

from __future__ import annotations

from sedna.cli._kinds import Column, KindInfo, find
from sedna.cli._tables import age, cell, jsonpath

__all__ = ["Column", "KindInfo", "age", "cell", "columns", "find", "jsonpath"]


def columns(plural: str, wide: bool = False) -> tuple[Column, ...]:
    """The columns ``sedna get <plural>`` prints (``wide``: also those of ``-o wide``)."""
    return tuple(c for c in find(plural).columns if wide or c.priority == 0)
