"""The IncrementalLearningJob controller: :mod:`.reconciler` (the shared stage machine plus an inference
worker), :mod:`.workers` (its Pods), :mod:`.validation` and :mod:`.reports` (edge reports into status)."""

from gm.controllers.incremental_learning.reconciler import setup
from gm.controllers.incremental_learning.reports import handle_upstream

__all__ = ["handle_upstream", "setup"]
