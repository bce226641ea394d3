"""Register every controller with a :class:`~gm.runtime.reconciling.Manager`."""

from __future__ import annotations

from gm.controllers import dataset, federated_learning, incremental_learning, joint_inference, model
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings

CONTROLLERS = (dataset, model, joint_inference, incremental_learning, federated_learning)


def setup_controllers(manager: Manager, settings: ControllerSettings) -> list[Controller]:
    """Create every controller and its watches; start them with ``manager.start()``."""
    return [module.setup(manager, settings) for module in CONTROLLERS]
