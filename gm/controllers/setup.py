"""Register every controller with a :class:`~gm.runtime.reconciling.Manager`, and their edge report handlers.

An edge report handler takes ``(cluster, node, report)``: ``node`` is the authenticated node that
sent it (the hub has already checked the node may report about that object).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gm.cluster.interface import Cluster
from gm.controllers import dataset, federated_learning, incremental_learning, joint_inference, lifelong_learning, model
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from sedna.controlplane import kinds

CONTROLLERS = (dataset, model, joint_inference, incremental_learning, federated_learning, lifelong_learning)
Handler = Callable[[Cluster, str, Any], None]


def handle_model_report(cluster: Cluster, node: str, report: Any) -> None:
    """A node's LC checked a Model's file: file it under ``status.nodeReports[node]``."""
    model.apply_node_report(cluster, report.key.namespace, report.key.name, node, report.payload)


UPSTREAM_HANDLERS: dict[str, Handler] = {
    kinds.INCREMENTAL_LEARNING_JOB.key: incremental_learning.handle_upstream,
    kinds.FEDERATED_LEARNING_JOB.key: federated_learning.handle_upstream,
    kinds.LIFELONG_LEARNING_JOB.key: lifelong_learning.handle_upstream,
    kinds.MODEL.key: handle_model_report,
}
"""The edge hub handler of each kind whose reports a controller files (by lowercase kind)."""


def setup_controllers(manager: Manager, settings: ControllerSettings) -> list[Controller]:
    """Create every controller and its watches; start them with ``manager.start()``."""
    return [module.setup(manager, settings) for module in CONTROLLERS]
