"""The JointInferenceService controller: :mod:`.reconciler`, :mod:`.workers` (its Deployments and Service)
and :mod:`.validation`. Its edge counters reach status through the edge hub's own handler."""

from gm.controllers.joint_inference.reconciler import setup

__all__ = ["setup"]
