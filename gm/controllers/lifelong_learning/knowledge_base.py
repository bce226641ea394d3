"""Where a LifelongLearningJob's knowledge base runs, whether it answers, and publishing a version.

Two ways, decided by the GM's settings:

- **per job** (the default): the controller runs the KB server itself, a Deployment plus Service
  ``<job>-kb`` (:mod:`.workers`) storing under ``<outputDir>/kb``. Its bearer token is generated
  once (random, 256 bits) and kept in the Deployment's env, which is where the stage and inference
  workers' ``KB_TOKEN`` is read from on later reconciles; a restarted GM finds it there.
- **shared** (``--kb-server URL`` / ``SEDNA_GM_KB_SERVER``, token from ``--kb-token-file``): every
  job uses that server, as Sedna's GM config points at one. A KB's published versions form one
  lineage (the edge serves "the latest published"), so one job uses a shared KB at a time: the
  oldest job; any other waits, saying which job holds it.

The controller asks the KB itself whether it answers (``GET /knowledgebase/versions`` with the
token, so a wrong shared token shows as a waiting reason, not as failing workers), and publishes
a version at the Deploy stage, through :class:`KBAccess`. :class:`HttpKBAccess` is the real one;
:class:`UnreachableKB` answers "unreachable" without any I/O (for tests of the objects alone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

HEALTH_TTL = 2.0
"""Seconds a health answer is reused."""
TIMEOUT = 3.0
"""Seconds the GM waits for the KB on one call."""


@dataclass(frozen=True)
class KBState:
    """What the controller knows about a job's KB: where it is and whether it answers."""

    url: str
    """``http://host:port``; '' while unknown (the Service has no address yet)."""
    token: str
    managed: bool
    """True: the controller runs it (``<job>-kb``); False: the GM's shared KB."""
    ready: bool
    reason: str
    """CamelCase: ``Ready``, ``Starting``, ``Unreachable``, ``InUse``."""
    message: str

    def status(self) -> dict[str, object]:
        """``status.knowledgeBaseServer``."""
        return {"url": self.url, "managed": self.managed, "ready": self.ready, "reason": self.reason,
                "message": self.message}


class KBAccess(Protocol):
    """The controller's two calls to a KB server."""

    def problem(self, url: str, token: str) -> str:
        """Why the KB at ``url`` cannot be used ('' when it answers and accepts ``token``)."""
        ...

    def publish(self, url: str, token: str, version: int) -> None:
        """Publish ``version``; raises :class:`~sedna.service.kb.errors.KBError` with the reason when the KB
        refuses or cannot be reached."""
        ...


class HttpKBAccess:
    """:class:`KBAccess` over HTTP (``sedna.service.kb.client``), health answers cached :data:`HEALTH_TTL` s."""

    def __init__(self, timeout: float = TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout, self.clock = timeout, clock
        self._seen: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def problem(self, url: str, token: str) -> str:
        with self._lock:
            cached = self._seen.get((url, token))
        if cached is not None and self.clock() - cached[0] < HEALTH_TTL:
            return cached[1]
        from sedna.service.kb.client import KBClient
        from sedna.service.kb.errors import KBError

        try:
            with KBClient(url, token, timeout=self.timeout) as client:
                client.versions()
            found = ""
        except KBError as exc:
            found = str(exc)
        with self._lock:
            self._seen[(url, token)] = (self.clock(), found)
        return found

    def publish(self, url: str, token: str, version: int) -> None:
        from sedna.service.kb.client import KBClient

        with KBClient(url, token, timeout=self.timeout) as client:
            client.publish(version)
        with self._lock:
            self._seen.pop((url, token), None)


class UnreachableKB:
    """:class:`KBAccess` that reaches nothing: every KB is unreachable, nothing is published."""

    def problem(self, url: str, token: str) -> str:
        return f"KB server {url} unreachable: no KB access configured"

    def publish(self, url: str, token: str, version: int) -> None:
        from sedna.service.kb.errors import KBUnavailableError

        raise KBUnavailableError(f"KB server {url} unreachable: no KB access configured")
