"""What a node's LC found about a Model's file, filed under ``status.nodeReports[<node>]``.

The LC of every node a Model is routed to (:mod:`gm.workloads.placement`: the nodes of the workers
that use it) checks the file the Model names and reports ``{available, reason, message, generation}``
(:class:`~gm.controllers.common.status.NodeReport`). :func:`apply_node_report` validates the payload
and files it for the node the report came from; the caller (the edge hub) passes the node of the
authenticated stream, never one named in the payload. The Model controller turns reports about the
current generation into its ``Ready`` / ``Failed`` condition (:mod:`.reconciler`).
"""

from __future__ import annotations

import re
from typing import Any

from gm.cluster.interface import MODEL, Cluster, Obj
from gm.controllers.common.status import NodeReport
from gm.errors import MalformedReport
from gm.runtime.patches import utc_now

_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
MAX_MESSAGE = 1024


def node_report(payload: Any) -> NodeReport:
    """The :class:`NodeReport` in ``payload``; :class:`~gm.errors.MalformedReport` naming the field otherwise."""
    if not isinstance(payload, dict):
        raise MalformedReport(f"payload: expected an object with 'available', got {payload!r}")
    available = payload.get("available")
    if not isinstance(available, bool):
        raise MalformedReport(f"available: expected true or false, got {available!r}")
    reason = payload.get("reason", "Available" if available else "NotAvailable")
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise MalformedReport(f"reason: expected a CamelCase word (e.g. FileMissing), got {reason!r}")
    message = payload.get("message", "")
    if not isinstance(message, str):
        raise MalformedReport(f"message: expected a string, got {message!r}")
    generation = payload.get("generation")
    if generation is not None and (isinstance(generation, bool) or not isinstance(generation, int) or generation < 1):
        raise MalformedReport(f"generation: expected the Model's metadata.generation (>= 1), got {generation!r}")
    report: NodeReport = {"available": available, "reason": reason, "message": message[:MAX_MESSAGE],
                          "updateTime": utc_now()}
    if generation is not None:
        report["generation"] = generation
    return report


def apply_node_report(cluster: Cluster, namespace: str, name: str, node: str, payload: Any) -> Obj:
    """File ``payload`` as ``status.nodeReports[node]`` of Model ``namespace/name``; return the Model."""
    if not node:
        raise MalformedReport("node: a node report needs the reporting node")
    report = node_report(payload)
    # a merge patch merges nested objects: every key is written, so nothing of an older report survives
    entry: dict[str, Any] = {"generation": None, **report}
    return cluster.patch_status(MODEL, namespace, name, {"nodeReports": {node: entry}})


def usable_reports(model: Obj) -> dict[str, NodeReport]:
    """The node reports about the Model's current generation (or naming none), by node."""
    generation = int((model.get("metadata") or {}).get("generation") or 1)
    raw = (model.get("status") or {}).get("nodeReports") or {}
    out: dict[str, NodeReport] = {}
    for node, report in raw.items() if isinstance(raw, dict) else ():
        if isinstance(report, dict) and isinstance(report.get("available"), bool) \
                and report.get("generation") in (None, generation):
            out[str(node)] = report  # type: ignore[assignment]
    return out
