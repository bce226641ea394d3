"""The Dataset controller: validates the spec and reports it in ``Ready`` / ``Failed`` conditions.

Datasets are delivered to their node's LC by the edge hub, which also writes
``status.numberOfSamples``, ``updateTime`` and the ``IndexReadable`` condition from the LC's
reports; this controller touches only ``Ready`` / ``Failed``, so the two writers never overwrite
each other.
"""

from __future__ import annotations

from gm.cluster.interface import DATASET
from gm.controllers.common.conditions import ConditionReconciler
from gm.controllers.dataset.validation import validate
from gm.runtime import predicates
from gm.runtime.mapping import own_key
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from sedna.controlplane import kinds


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the Dataset controller with ``manager``."""
    cache = manager.informer(DATASET).cache
    reconciler = ConditionReconciler(manager.cluster, cache, validate, settings.nodes)
    controller = manager.add_controller(kinds.DATASET.key, reconciler, 1)
    manager.watch(DATASET, controller, own_key, predicates.spec_or_metadata_changed)
    return controller
