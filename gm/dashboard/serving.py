"""Where the dashboard is served: inside the local API, or on its own server for the kube backend.

:func:`start_dashboard` starts the :class:`~gm.dashboard.live.Live` caches and either mounts the
app at :data:`PREFIX` in an existing API app (the local backend's: the API's own bearer check
leaves that prefix to the dashboard, which has a login) or serves it alone with uvicorn on
``host:port`` (the kube backend, where the GM has no API of its own), with ``/`` redirecting to
the dashboard and an open ``/healthz``. :meth:`DashboardHandle.stop` ends open streams first.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from gm.cluster.interface import Cluster
from gm.dashboard.app import create_app
from gm.dashboard.live import Live, NodeSessions

PREFIX = "/dashboard"


class DashboardHandle:
    """A running dashboard: ``url`` (when it has its own server), ``live`` caches; ``stop()`` it."""

    def __init__(self, live: Live, closing: threading.Event, server: Any = None, url: str = "") -> None:
        self.live, self.url = live, url
        self._closing, self._server = closing, server

    def stop(self) -> None:
        """End open streams, stop the server (if it has one) and the watches."""
        self._closing.set()
        if self._server is not None:
            self._server.stop()
        self.live.stop()


def start_dashboard(cluster: Cluster, token: str, node_sessions: NodeSessions | None = None, *,
                    api_app: Any = None, host: str = "127.0.0.1", port: int = 0) -> DashboardHandle:
    """Start the dashboard over ``cluster``: mounted in ``api_app`` when given, else served on ``host:port``.

    ``token`` is the GM's bearer token (the login takes it); ``node_sessions`` returns the hub's view
    of every node (``HubHandle.node_sessions``), None without a hub.
    """
    live = Live(cluster, node_sessions=node_sessions)
    live.start()
    closing = threading.Event()
    app = create_app(live, token, PREFIX, closing)
    if api_app is not None:
        from gm.cluster.local.api import mount_self_authenticated

        mount_self_authenticated(api_app, PREFIX, app)
        return DashboardHandle(live, closing)
    from gm.cluster.local.api import serve_api

    server = serve_api(standalone(app), host, port)
    return DashboardHandle(live, closing, server, f"http://{host}:{server.port}{PREFIX}/")


def standalone(app: Any) -> Starlette:
    """``app`` mounted at :data:`PREFIX`, with ``/`` redirecting there and an open ``/healthz``."""

    async def root(_request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/", root), Route("/healthz", healthz), Mount(PREFIX, app=app)])
