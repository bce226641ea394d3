"""Hard-example mining filters, registered under ``ClassType.HEM`` by Sedna's aliases.

Importing this package registers the built-ins: Threshold, CrossEntropy, IBT,
Random, CloudOnly, EdgeOnly.
"""

from sedna.algorithms.hard_example_mining.base import BaseFilter, FaultCounter
from sedna.algorithms.hard_example_mining.filters import (
    CloudOnlyFilter,
    CrossEntropyFilter,
    EdgeOnlyFilter,
    IBTFilter,
    RandomFilter,
    ThresholdFilter,
)

__all__ = [
    "BaseFilter",
    "CloudOnlyFilter",
    "CrossEntropyFilter",
    "EdgeOnlyFilter",
    "FaultCounter",
    "IBTFilter",
    "RandomFilter",
    "ThresholdFilter",
]
