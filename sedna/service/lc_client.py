"""Client of the Local Controller's worker API: ``POST /sedna/workers/{worker}/info``.

The body keeps Sedna's shape (``name, namespace, ownerName, ownerKind, ownerInfo,
kind, status, results``) and carries the owner's real kind and name; the LC parses it
into its own record (the control plane's ``WorkerReport``, which this SDK does not
import: tests pin the two together). Reports are best effort from the worker's point
of view: a failed send is logged and returns False, never raises, so a down LC cannot
stop inference or training.

``LCClient.send`` also keeps Sedna's class-level form, ``LCClient.send(lc_server,
worker_name, message)``, for programs written for Sedna: it posts ``message`` as given
with the bearer token of ``LC_TOKEN`` (read at the call) and returns the LC's JSON answer,
or None when the report was refused or the LC is unreachable (the LC's message, which says
what to set, is logged). Credentials in ``lc_server`` never reach a log line.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sedna.common.config import WorkerConfig

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LCReport:
    """What a worker reports; the client adds who it is (``name``, ``namespace``) from its config."""

    owner_kind: str
    """Lowercase resource kind: ``jointinferenceservice``, ``federatedlearningjob``, ..."""
    owner_name: str
    kind: str
    """What the worker is doing: ``inference``, ``train``, ``eval``, ``deploy``."""
    status: str = ""
    owner_info: dict[str, Any] | None = None
    results: list[dict[str, Any]] | None = None

    def to_body(self, worker_name: str, namespace: str) -> dict[str, Any]:
        """Sedna's ``MessageContent`` body."""
        body: dict[str, Any] = {
            "name": worker_name,
            "namespace": namespace,
            "ownerName": self.owner_name,
            "ownerKind": self.owner_kind,
            "kind": self.kind,
            "status": self.status,
        }
        if self.owner_info is not None:
            body["ownerInfo"] = self.owner_info
        if self.results is not None:
            body["results"] = self.results
        return body


def without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed (for logs)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else url


def _describe(exc: Exception, url: str) -> str:
    """``exc`` for a log line, with any credentials of ``url`` blanked out."""
    text = f"{type(exc).__name__}: {exc}"
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    return text.replace(userinfo, "***") if userinfo else text


def sedna_send(lc_server: str, worker_name: str, message: dict[str, Any], timeout: float = 5.0) -> Any:
    """Sedna's ``LCClient.send``: POST ``message`` for ``worker_name``; the LC's JSON answer, or None."""
    import httpx

    url = f"{lc_server.rstrip('/')}/sedna/workers/{worker_name}/info"
    token = os.environ.get("LC_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shown = without_credentials(url)
    try:
        response = httpx.post(url, json=message, headers=headers, timeout=timeout, verify=not url.startswith("http://"))
    except httpx.HTTPError as exc:
        LOG.warning("report to LC %s failed: %s", shown, _describe(exc, url))
        return None
    if response.status_code != 200:
        LOG.warning("LC %s refused the report (%s): %s", shown, response.status_code, response.text[:400])
        return None
    try:
        return response.json()
    except ValueError:
        return {}


class _SendEither:
    """``LCClient.send``: Sedna's ``send(lc_server, worker_name, message)`` on the class, ``send(report)`` on
    an instance."""

    def __init__(self, on_instance: Callable[..., bool]) -> None:
        self._on_instance = on_instance
        self.__doc__ = on_instance.__doc__

    def __get__(self, obj: Any, owner: type) -> Callable[..., Any]:
        if obj is None:
            return sedna_send
        return types.MethodType(self._on_instance, obj)


class LCClient:
    """Sends :class:`LCReport` s to the node's Local Controller (``LCClient(config).send(report)``).

    ``LCClient.send(lc_server, worker_name, message)`` on the class is Sedna's call (see the module docstring).
    """

    def __init__(self, config: WorkerConfig, timeout: float = 5.0) -> None:
        self._config = config
        self._timeout = timeout
        self._failing = False  # warn once per outage, not on every report

    def _failed(self, message: str, *args: object) -> bool:
        LOG.log(logging.DEBUG if self._failing else logging.WARNING, message + (
            "" if self._failing else " (further failures are logged at debug level until a report succeeds)"), *args)
        self._failing = True
        return False

    def _send(self, report: LCReport) -> bool:
        """POST the report; True when the LC accepted it."""
        import httpx

        cfg = self._config
        worker = cfg.worker_name or "worker"
        url = f"{cfg.lc_server.rstrip('/')}/sedna/workers/{worker}/info"
        shown = without_credentials(url)
        headers = {"Authorization": f"Bearer {cfg.lc_token}"} if cfg.lc_token else {}
        # plain http has no TLS to verify: skip loading the CA bundle (slow under load) on every report
        verify = not url.startswith("http://")
        try:
            response = httpx.post(url, json=report.to_body(worker, cfg.namespace), headers=headers,
                                  timeout=self._timeout, verify=verify)
        except httpx.HTTPError as exc:
            return self._failed("report to LC %s failed: %s", shown, _describe(exc, url))
        if response.status_code >= 300:
            return self._failed("LC %s refused report (%s): %s", shown, response.status_code, response.text[:400])
        if self._failing:
            LOG.info("reports to LC %s succeed again", shown)
            self._failing = False
        return True

    send = _SendEither(_send)
