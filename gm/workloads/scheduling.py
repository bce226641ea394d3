"""Edge workers on KubeEdge nodes: tolerate the edge taint, share the node's network when asked.

KubeEdge edge nodes carry the role label and usually the taint ``node-role.kubernetes.io/edge``;
a worker pinned to such a node (``nodeName`` or the hostname nodeSelector, as placement decides)
must tolerate it, or the scheduler leaves it Pending. Workers that devices on the node's network
must reach (the joint-inference edge worker, as in Sedna) use ``hostNetwork``, with
``ClusterFirstWithHostNet`` so they still resolve the cloud Service's DNS name. A template's own
tolerations, ``hostNetwork``, ``dnsPolicy`` and ``resources`` are kept. Pure functions.
"""

from __future__ import annotations

from typing import Any

EDGE_TAINT = "node-role.kubernetes.io/edge"
EDGE_TOLERATION = {"key": EDGE_TAINT, "operator": "Exists", "effect": "NoSchedule"}


def place_on_edge(pod_spec: dict[str, Any], host_network: bool = False) -> None:
    """Add the edge toleration (unless one for the taint is there) and, if asked, hostNetwork, in place."""
    tolerations = pod_spec.setdefault("tolerations", [])
    if not any(t.get("key") == EDGE_TAINT or (not t.get("key") and t.get("operator") == "Exists")
               for t in tolerations):
        tolerations.append(dict(EDGE_TOLERATION))
    if host_network and "hostNetwork" not in pod_spec:
        pod_spec["hostNetwork"] = True
        pod_spec.setdefault("dnsPolicy", "ClusterFirstWithHostNet")
