"""Joint inference: :class:`JointInference` on the edge, :class:`BigModelService` in the cloud."""

from sedna.core.joint_inference.cloud import BigModelService, CloudModel
from sedna.core.joint_inference.edge import INFERENCE_THEN_MINING, MINING_THEN_INFERENCE, JointInference, build_hem

__all__ = ["INFERENCE_THEN_MINING", "MINING_THEN_INFERENCE", "BigModelService", "CloudModel", "JointInference",
           "build_hem"]
