"""The FederatedLearningJob controller: :mod:`.reconciler`, :mod:`.workers` (the Pods and Service it wants),
:mod:`.validation` (what the schema cannot check) and :mod:`.reports` (round reports into status)."""

from gm.controllers.federated_learning.reconciler import setup
from gm.controllers.federated_learning.reports import handle_upstream

__all__ = ["handle_upstream", "setup"]
