"""Client of the Local Controller's worker API: ``POST /sedna/workers/{worker}/info``.

The body keeps Sedna's shape (``name, namespace, ownerName, ownerKind, ownerInfo,
kind, status, results``) and carries the owner's real kind and name; the LC parses it
into its own record (the control plane's ``WorkerReport``, which this SDK does not
import: tests pin the two together). Reports are best effort from the worker's point
of view: a failed send is logged and returns False, never raises, so a down LC cannot
stop inference or training.
"""

from __future__ import annotations

import logging
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


class LCClient:
    """Sends :class:`LCReport` s to the node's Local Controller."""

    def __init__(self, config: WorkerConfig, timeout: float = 5.0) -> None:
        self._config = config
        self._timeout = timeout
        self._failing = False  # warn once per outage, not on every report

    def _failed(self, message: str, *args: object) -> bool:
        LOG.log(logging.DEBUG if self._failing else logging.WARNING, message + (
            "" if self._failing else " (further failures are logged at debug level until a report succeeds)"), *args)
        self._failing = True
        return False

    def send(self, report: LCReport) -> bool:
        """POST the report; True when the LC accepted it."""
        import httpx

        cfg = self._config
        worker = cfg.worker_name or "worker"
        url = f"{cfg.lc_server.rstrip('/')}/sedna/workers/{worker}/info"
        headers = {"Authorization": f"Bearer {cfg.lc_token}"} if cfg.lc_token else {}
        # plain http has no TLS to verify: skip loading the CA bundle (slow under load) on every report
        verify = not url.startswith("http://")
        try:
            response = httpx.post(url, json=report.to_body(worker, cfg.namespace), headers=headers,
                                  timeout=self._timeout, verify=verify)
        except httpx.HTTPError as exc:
            return self._failed("report to LC %s failed: %s", url, exc)
        if response.status_code >= 300:
            return self._failed("LC %s refused report (%s): %s", url, response.status_code, response.text[:200])
        if self._failing:
            LOG.info("reports to LC %s succeed again", url)
            self._failing = False
        return True
