"""The result of one joint inference, shared by the edge worker's front ends (OIP, MQTT)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ComputedAt = Literal["edge", "cloud"]


@dataclass(frozen=True)
class JointOutcome:
    """What :meth:`sedna.core.joint_inference.JointInference.infer` returns for one input.

    ``result`` is the final answer: the cloud's when the sample was offloaded and the
    cloud answered, else the edge's. ``computed_at`` says which.
    """

    is_hard_example: bool
    result: Any
    edge_result: Any
    cloud_result: Any | None
    computed_at: ComputedAt
    example_id: str | None = None
    """Id of the stored hard example, when one was kept (``None`` otherwise)."""
