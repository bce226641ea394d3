"""The Model controller: ``Ready`` when the spec is valid and no node reports the file unusable.

Sedna has no Model controller; here a bad URL is reported on the Model itself instead of surfacing
later inside a worker, and so is a file the LC of a node that needs it cannot find
(``status.nodeReports``, :mod:`.reports`): the Model is ``Failed`` with the node's reason (e.g.
``FileMissing``) and message until that node reports it available. Models reach nodes through the
edge hub, and the workload controllers watch Models to recover owners waiting for one.
"""

from __future__ import annotations

from gm.cluster.interface import MODEL, Obj
from gm.controllers.common.conditions import ConditionReconciler
from gm.controllers.model.reports import usable_reports
from gm.controllers.model.validation import validate
from gm.runtime import predicates
from gm.runtime.mapping import own_key
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from sedna.controlplane import kinds


class ModelReconciler(ConditionReconciler):
    """The condition reconciler, plus the nodes' reports about the file."""

    def unavailable(self, obj: Obj) -> tuple[str, str] | None:
        bad = sorted((node, r) for node, r in usable_reports(obj).items() if not r.get("available"))
        if not bad:
            return None
        reason = str(bad[0][1].get("reason") or "NotAvailable")
        return reason, "; ".join(f"node {node}: {r.get('message') or r.get('reason') or 'not available'}"
                                 for node, r in bad)

    def ready_message(self, obj: Obj) -> str:
        nodes = sorted(node for node, r in usable_reports(obj).items() if r.get("available"))
        return "spec is valid" + (f"; available on {', '.join(nodes)}" if nodes else "")


def _spec_or_reports_changed(old: Obj, new: Obj) -> bool:
    return predicates.spec_or_metadata_changed(old, new) or \
        (old.get("status") or {}).get("nodeReports") != (new.get("status") or {}).get("nodeReports")


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the Model controller with ``manager``."""
    cache = manager.informer(MODEL).cache
    controller = manager.add_controller(kinds.MODEL.key, ModelReconciler(manager.cluster, cache, validate), 1)
    manager.watch(MODEL, controller, own_key, _spec_or_reports_changed)
    return controller
