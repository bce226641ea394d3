"""The result of one joint inference, shared by the edge worker's front ends (OIP, MQTT).

It lives in ``common``, below both ``core`` (which produces it) and ``service`` (whose MQTT
gateway consumes it), so neither layer imports the other for it.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

ComputedAt = Literal["edge", "cloud"]


class JointOutcome(NamedTuple):
    """What :meth:`sedna.core.joint_inference.JointInference.infer` returns for one input.

    ``result`` is the final answer: the cloud's when the sample was offloaded and the
    cloud answered, else the edge's. ``computed_at`` says which. (A NamedTuple: it is
    built once per sample on the edge's hot path, where a frozen dataclass costs more.)
    """

    is_hard_example: bool
    result: Any
    edge_result: Any
    cloud_result: Any | None
    computed_at: ComputedAt
    example_id: str | None = None
    """Id of the stored hard example, when one was kept (``None`` otherwise)."""
