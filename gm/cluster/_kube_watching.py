"""One watch request through ``kubernetes.watch.Watch``, stoppable from another thread.

Private helper of :mod:`gm.cluster.kube`, which loops over :func:`stream` (resume, re-list).
A blocked read on a watch response cannot be interrupted by ``Watch.stop()`` (it is only
checked between events), so a small stopper thread shuts the open urllib3 response down
when the caller's ``stop`` event is set; the read then ends at once instead of waiting for
the next event or the server-side timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import kubernetes.watch
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from gm.cluster import _kube_endpoints
from gm.cluster.interface import Expired, Kind, Obj

if TYPE_CHECKING:
    from gm.cluster.kube import KubeCluster


class Interrupted(Exception):
    """The stream broke (connection reset, shut down by ``stop``, garbled line)."""


def stream(cluster: KubeCluster, kind: Kind, namespace: str | None, resource_version: str | None,
           stop: threading.Event) -> Iterator[tuple[str, Obj]]:
    """Yield ``(type, object)`` from one watch request until the server ends it or ``stop`` is set."""
    fn, args = cluster._endpoint(kind).list(namespace)
    responses: list[Any] = []
    done = threading.Event()

    def call(*call_args: Any, **kwargs: Any) -> Any:  # no docstring: Watch then keeps raw dicts
        response = fn(*call_args, **kwargs)
        responses.append(response)
        if stop.is_set():
            _shutdown(response)
        return response

    stopper = threading.Thread(target=_stop_when, args=(stop, done, responses), daemon=True,
                               name=f"watch-stop-{kind.plural}")
    stopper.start()
    watcher = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    kwargs: dict[str, Any] = {"timeout_seconds": cluster.watch_timeout, "allow_watch_bookmarks": True}
    if resource_version:
        kwargs["resource_version"] = resource_version
    try:
        for event in watcher.stream(call, *args, **kwargs):  # type: ignore[no-untyped-call]
            if stop.is_set():
                return
            yield str(event["type"]), event["raw_object"]
    except ApiException as exc:
        if exc.status == 410:
            raise Expired(str(exc.reason)) from exc
        raise _kube_endpoints.translate(exc, kind, "watch", args) from exc
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise Interrupted(f"{type(exc).__name__}: {exc}") from exc
    finally:
        done.set()
        watcher.stop()  # type: ignore[no-untyped-call]


def _stop_when(stop: threading.Event, done: threading.Event, responses: list[Any]) -> None:
    while not done.is_set():
        if stop.wait(0.1):
            if responses:
                _shutdown(responses[-1])
            return


def _shutdown(response: Any) -> None:
    shutdown = getattr(response, "shutdown", None) or response.close
    try:
        shutdown()
    except Exception:  # already closed or never connected: nothing left to interrupt
        pass
