"""The edge hub: the GM end of the GM <-> LC gRPC streams (DESIGN §3).

Modules: :mod:`.routing` (which object goes to which node), :mod:`.queues` (per-node newest-only
downstream queues), :mod:`.upstream` (status reports -> resource status, per-kind handlers),
:mod:`.sequences` (per-node high-water marks on Node annotations), :mod:`.watching` (cluster watch
feeding the router), :mod:`.sessions` (one node stream), :mod:`.authorization` (which reports a
node may make), :mod:`.server` (gRPC, joins, authentication through :mod:`gm.identity`, TLS).
The hub watches the cluster itself, independently of the controllers. ``gm`` never imports ``lc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gm.cluster.interface import Cluster
    from gm.hub.server import HubHandle, HubTLS

__all__ = ["start_hub"]


def start_hub(cluster: Cluster, host: str, port: int, tokens: Mapping[str, str] | None = None,
              tls: HubTLS | None = None, **options: object) -> HubHandle:
    """Start the edge hub; see :func:`gm.hub.server.start_hub` (imported lazily: grpc loads on call)."""
    from gm.hub.server import start_hub as _start

    return _start(cluster, host, port, tokens, tls, **options)  # type: ignore[arg-type]
