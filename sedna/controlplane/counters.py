"""Joint-inference counters: one record from the edge worker's report to the resource's status.

The counters travel in three shapes, all converted here and checked by one validation
(:meth:`JointCounters.from_owner_info`):

- a worker's report ``ownerInfo`` (Sedna's names plus this project's):
  ``{inferenceNumber, hardExampleNumber, uploadCloudRatio, cloudFailures, fallbacks, startTime,
  updateTime}``; the SDK's ``JointStats.owner_info`` writes exactly :data:`OWNER_INFO_KEYS`;
- the LC's upstream report for a service on its node: the same ``ownerInfo``, summed over the
  node's workers (:meth:`JointCounters.total`), in ``output.ownerInfo``;
- the GM's status: ``status.inference`` :class:`InferenceStatus` plus Sedna's ``status.metrics``
  ``[{key, value}]`` (:meth:`JointCounters.status`).

Counters are cumulative and absolute, so applying a report twice or late cannot skew them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from sedna.controlplane.errors import BadReport

OWNER_INFO_KEYS = ("inferenceNumber", "hardExampleNumber", "uploadCloudRatio", "cloudFailures", "fallbacks",
                   "startTime", "updateTime")
"""Every key of a joint-inference ``ownerInfo``; the first two are required."""
RATIO_DIGITS = 6
"""An aggregated ratio is rounded to this many decimal places."""


class InferenceStatus(TypedDict):
    """``status.inference`` of a JointInferenceService."""

    count: int
    hardExamples: int
    offloadRatio: float
    cloudFailures: int
    fallbacks: int
    updateTime: str


class Metric(TypedDict):
    """One entry of Sedna's ``status.metrics``."""

    key: str
    value: str


class JointStatus(TypedDict):
    """The status patch the GM writes for a node's joint-inference report."""

    inference: InferenceStatus
    metrics: list[Metric]


def _count(info: dict[str, Any], name: str, where: str, required: bool = False) -> int:
    if name not in info:
        if required:
            raise BadReport(f"{where}.{name}", "is required in jointinferenceservice reports")
        return 0
    value = info[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise BadReport(f"{where}.{name}", f"must be a non-negative integer, got {value!r}")
    return int(value)


def _stamp(info: dict[str, Any], name: str, where: str) -> str:
    value = info.get(name, "")
    if not isinstance(value, str):
        raise BadReport(f"{where}.{name}", f"must be a timestamp string, got {value!r}")
    return value


@dataclass(frozen=True)
class JointCounters:
    """Cumulative joint-inference counters of one worker, or summed over several."""

    inferences: int = 0
    """Samples answered (``inferenceNumber``; status ``count``)."""
    hard_examples: int = 0
    """Samples judged hard (``hardExampleNumber``; status ``hardExamples``)."""
    offload_ratio: float = 0.0
    """Hard examples / inferences, in [0, 1] (``uploadCloudRatio``; status ``offloadRatio``)."""
    cloud_failures: int = 0
    """Cloud calls that failed or missed their deadline (``cloudFailures``)."""
    fallbacks: int = 0
    """Hard examples the edge answered because the cloud was unavailable (``fallbacks``)."""
    start_time: str = ""
    """When the worker started counting (``startTime``, RFC 3339); the earliest when summed."""
    update_time: str = ""
    """When the counters were read (``updateTime``, RFC 3339); the latest when summed."""

    @classmethod
    def from_owner_info(cls, info: dict[str, Any], where: str = "ownerInfo") -> JointCounters:
        """Check an ``ownerInfo`` object; :class:`BadReport` names ``<where>.<key>`` of a bad value."""
        inferences = _count(info, "inferenceNumber", where, required=True)
        hard = _count(info, "hardExampleNumber", where, required=True)
        ratio = info.get("uploadCloudRatio")
        if ratio is None:
            ratio = hard / inferences if inferences else 0.0
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise BadReport(f"{where}.uploadCloudRatio", f"must be a number between 0 and 1, got {ratio!r}")
        return cls(inferences, hard, float(ratio), _count(info, "cloudFailures", where),
                   _count(info, "fallbacks", where), _stamp(info, "startTime", where),
                   _stamp(info, "updateTime", where))

    def owner_info(self) -> dict[str, Any]:
        """The ``ownerInfo`` object (every key of :data:`OWNER_INFO_KEYS`)."""
        return {"inferenceNumber": self.inferences, "hardExampleNumber": self.hard_examples,
                "uploadCloudRatio": self.offload_ratio, "cloudFailures": self.cloud_failures,
                "fallbacks": self.fallbacks, "startTime": self.start_time, "updateTime": self.update_time}

    @classmethod
    def total(cls, workers: list[JointCounters]) -> JointCounters:
        """The sum over ``workers``; the ratio is their mean weighted by inferences."""
        inferences = sum(w.inferences for w in workers)
        offloaded = sum(w.offload_ratio * w.inferences for w in workers)
        starts = [w.start_time for w in workers if w.start_time]
        return cls(inferences, sum(w.hard_examples for w in workers),
                   round(offloaded / inferences, RATIO_DIGITS) if inferences else 0.0,
                   sum(w.cloud_failures for w in workers), sum(w.fallbacks for w in workers),
                   min(starts) if starts else "", max((w.update_time for w in workers), default=""))

    def status(self, now: str) -> JointStatus:
        """The GM's status patch; ``now`` stands in for a missing ``update_time``."""
        return {
            "inference": {"count": self.inferences, "hardExamples": self.hard_examples,
                          "offloadRatio": self.offload_ratio, "cloudFailures": self.cloud_failures,
                          "fallbacks": self.fallbacks, "updateTime": self.update_time or now},
            "metrics": [{"key": "inferenceNumber", "value": str(self.inferences)},
                        {"key": "hardExampleNumber", "value": str(self.hard_examples)},
                        {"key": "uploadCloudRatio", "value": str(self.offload_ratio)}],
        }


__all__ = ["OWNER_INFO_KEYS", "RATIO_DIGITS", "InferenceStatus", "JointCounters", "JointStatus", "Metric"]
