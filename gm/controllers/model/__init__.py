"""The Model controller (:mod:`.reconciler`), its spec checks (:mod:`.validation`) and the nodes' reports
about its file (:mod:`.reports`)."""

from gm.controllers.model.reconciler import setup
from gm.controllers.model.reports import apply_node_report

__all__ = ["apply_node_report", "setup"]
