"""The dashboard's HTTP side: pages, the live stream, the login, a read-only JSON view of nodes.

Routes (relative to where the app is mounted, ``/dashboard`` in the GM):

- ``GET /`` the overview, ``GET /kinds/<plural>``, ``GET /<plural>/<namespace>/<name>``: server-rendered
  pages (:mod:`.views`, Jinja2 templates);
- ``GET /stream?page=<path>&since=<seq>``: Server-Sent Events for one page; an event ``region`` carries
  ``{"id", "html"}``, the fresh content of one stale region, a few per change burst (changes are
  coalesced for :data:`COALESCE_SECONDS`); ``Last-Event-ID`` on a reconnect brings the page up to date;
- ``GET /api/nodes``: JSON, every node with its Ready condition and hub session;
- ``GET|POST /login``, ``POST /logout``; ``GET /static/...`` (CSS and the one script; no auth).

Everything but the login and static files needs the session cookie or the bearer token
(:mod:`.auth`): pages redirect to the login, the stream and the API answer 401. Every answer carries
a Content-Security-Policy that allows only this origin's script and style (no inline script, no
eval, nothing from elsewhere), plus ``nosniff``, ``no-referrer`` and ``frame-ancestors 'none'``.
The app only reads: there is no route that changes the cluster.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gm.dashboard import views
from gm.dashboard.auth import COOKIE, Auth, form_fields, safe_next
from gm.dashboard.live import Live, Subscriber

COALESCE_SECONDS = 0.1
POLL_SECONDS = 2.0
"""How often an open page checks hub sessions (which no watch reports) and whether it is still open."""
KEEPALIVE_SECONDS = 15.0
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
STATIC = Path(__file__).resolve().parent / "static"


class Renderer:
    """Jinja2 templates of the package, with the prefix every link starts with."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.env = Environment(loader=PackageLoader("gm.dashboard", "templates"),
                               autoescape=select_autoescape(["html"]), auto_reload=False)
        self.env.globals["prefix"] = prefix

    def region(self, view: views.View, region_id: str, live: Live) -> str:
        region = view.region(region_id)
        if region is None:
            return ""
        return self.env.get_template(region.template).render(**region.context(live))

    def page(self, view: views.View, live: Live) -> str:
        seq = live.seq  # taken first: a change during rendering makes the stream send it again
        regions = [(r.id, Markup(self.region(view, r.id, live))) for r in view.regions]
        stream = f"{self.prefix}/stream?page={quote(view.path)}&since={seq}"
        return self.env.get_template("page.html").render(title=view.title, regions=regions, stream=stream,
                                                         nav=_nav(), crumbs=view.crumbs)

    def login(self, next_path: str, failed: bool) -> str:
        return self.env.get_template("login.html").render(title="Sign in", next=next_path, failed=failed, nav=None,
                                                          stream=None, crumbs=None)


def create_app(live: Live, token: str, prefix: str = "/dashboard",
               closing: threading.Event | None = None) -> Starlette:
    """The dashboard's ASGI app over ``live``, for mounting at ``prefix``; ``closing`` ends open streams."""
    auth, renderer = Auth(token, prefix), Renderer(prefix)
    closing = closing or threading.Event()

    async def page(request: Request) -> Response:
        if not auth.allowed(request):
            return RedirectResponse(f"{prefix}/login?next={quote(prefix + _path(request))}", status_code=303)
        view = views.view_for(_path(request), live)
        if view is None:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        html = await run_in_threadpool(renderer.page, view, live)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def login_form(request: Request) -> Response:
        next_path = safe_next(request.query_params.get("next"), prefix)
        return HTMLResponse(renderer.login(next_path, failed=False), headers={"Cache-Control": "no-store"})

    async def login(request: Request) -> Response:
        fields = await form_fields(request) or {}
        next_path = safe_next(fields.get("next"), prefix)
        if not auth.token_ok(fields.get("token", "")):
            return HTMLResponse(renderer.login(next_path, failed=True), status_code=401,
                                headers={"Cache-Control": "no-store"})
        response = RedirectResponse(next_path, status_code=303)
        response.headers.append("set-cookie", auth.cookie_header(auth.session(), request.url.scheme == "https"))
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{prefix}/login", status_code=303)
        response.headers.append("set-cookie", auth.cookie_header("", request.url.scheme == "https", max_age=0))
        return response

    async def nodes_api(request: Request) -> Response:
        if not auth.allowed(request):
            return _unauthorized()
        return JSONResponse(await run_in_threadpool(node_view, live), headers={"Cache-Control": "no-store"})

    async def stream(request: Request) -> Response:
        if not auth.allowed(request):
            return _unauthorized()
        view = views.view_for(request.query_params.get("page", "/"), live)
        if view is None:
            return JSONResponse({"error": f"page: no such page {request.query_params.get('page')!r}"},
                                status_code=404)
        since = _int(request.headers.get("last-event-id")) or _int(request.query_params.get("since"))
        expires = _session_expiry(request)
        body = _events(request, view, live, renderer, since, closing, expires)
        return StreamingResponse(body, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    app = Starlette(routes=[
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]), Route("/stream", stream), Route("/api/nodes", nodes_api),
        Route("/{path:path}", page),
    ])
    app.state.closing = closing
    return SecurityHeaders(app)  # type: ignore[return-value]


async def _events(request: Request, view: views.View, live: Live, renderer: Renderer, since: int,
                  closing: threading.Event, expires: float | None) -> AsyncIterator[str]:
    subscriber = Subscriber(view.interest, asyncio.get_running_loop())
    live.subscribe(subscriber)
    try:
        if live.seq > since:  # something changed between the page's render and this stream
            subscriber.mark({r.id for r in view.regions})
        fingerprint = views.nodes_fingerprint(live) if view.shows_nodes else None
        quiet_since = time.monotonic()
        yield "retry: 2000\n\n"
        while not closing.is_set():
            try:
                await asyncio.wait_for(subscriber.wake.wait(), POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
            if closing.is_set() or await request.is_disconnected():
                return
            if expires is not None and time.time() > expires:
                yield "event: login\ndata: {}\n\n"
                return
            if view.shows_nodes:
                now_print = await run_in_threadpool(views.nodes_fingerprint, live)
                if now_print != fingerprint:
                    fingerprint = now_print
                    subscriber.mark({"nodes"})
            dirty = subscriber.take()
            if dirty:
                await asyncio.sleep(COALESCE_SECONDS)  # let the rest of a burst of changes land
                dirty |= subscriber.take()
                seq = live.seq
                rendered = await run_in_threadpool(_render, renderer, view, live, dirty)
                yield "".join(f"id: {seq}\nevent: region\ndata: {json.dumps({'id': i, 'html': h})}\n\n"
                              for i, h in rendered)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
    finally:
        live.unsubscribe(subscriber)


def _render(renderer: Renderer, view: views.View, live: Live, dirty: set[str]) -> list[tuple[str, str]]:
    return [(r.id, renderer.region(view, r.id, live)) for r in view.regions if r.id in dirty]


def node_view(live: Live) -> dict[str, Any]:
    """``{"items": [{name, ready, hub: {...} | null}]}`` for ``GET /api/nodes``."""
    sessions = live.sessions()
    nodes = {o["metadata"]["name"]: o for o in live.objects("nodes")}
    items = []
    for name in sorted(set(nodes) | set(sessions)):
        conditions = ((nodes.get(name) or {}).get("status") or {}).get("conditions") or []
        ready = [c.get("status") for c in conditions if c.get("type") == "Ready"]
        items.append({"name": name, "ready": ready[-1] if ready else None,
                      "hub": dict(sessions[name]) if name in sessions else None})
    return {"hub": live.node_sessions is not None, "items": items}


class SecurityHeaders:
    """ASGI middleware: the security headers on every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _nav() -> list[tuple[str, str]]:
    return [(p, views.KIND_BY_PLURAL[p].kind) for p in views.SEDNA_PLURALS]


def _path(request: Request) -> str:
    """The request path inside the dashboard (without the prefix it is mounted at)."""
    path, root = request.url.path, str(request.scope.get("root_path", ""))
    return (path[len(root):] if root and path.startswith(root) else path) or "/"


def _session_expiry(request: Request) -> float | None:
    value = request.cookies.get(COOKIE, "")
    expiry = value.partition(".")[0]
    return float(expiry) if expiry.isdigit() else None


def _unauthorized() -> Response:
    return JSONResponse({"error": "a session (log in at the dashboard) or 'Authorization: Bearer <token>' is "
                                  "required"}, status_code=401)


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0
