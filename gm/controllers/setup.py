"""Register every controller with a :class:`~gm.runtime.reconciling.Manager`, and their edge report handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gm.cluster.interface import Cluster
from gm.controllers import dataset, federated_learning, incremental_learning, joint_inference, model
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from sedna.controlplane import kinds

CONTROLLERS = (dataset, model, joint_inference, incremental_learning, federated_learning)
UPSTREAM_HANDLERS: dict[str, Callable[[Cluster, Any], None]] = {
    kinds.INCREMENTAL_LEARNING_JOB.key: incremental_learning.handle_upstream,
    kinds.FEDERATED_LEARNING_JOB.key: federated_learning.handle_upstream,
}
"""The edge hub handler of each kind whose reports a controller files (by lowercase kind)."""


def setup_controllers(manager: Manager, settings: ControllerSettings) -> list[Controller]:
    """Create every controller and its watches; start them with ``manager.start()``."""
    return [module.setup(manager, settings) for module in CONTROLLERS]
