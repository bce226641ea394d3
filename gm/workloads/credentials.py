"""The credentials the GM puts into worker env: ``LC_TOKEN`` and federated learning's.

- ``LC_TOKEN``: a worker credential (:mod:`sedna.controlplane.credentials`) bound to the owner's
  kind, namespace and name and to the worker's name (a Deployment's replicas: the name prefix
  ``<deployment>-``), signed with the worker key of the node the worker runs on. Only that node's
  LC accepts it, and only for that owner and worker.
- Federated learning (``docs/federated.md``): the aggregator gets the job's signing key as
  ``AGG_CLIENT_KEY`` (hex); each trainer gets only its own credential as ``AGG_CLIENT_TOKEN``:
  ``hex(HMAC-SHA256(key, "sedna-fl/<job>/<client id>"))``, its client id being its ``WORKER_NAME``.

Keys come from a :class:`KeySource` (the GM's :class:`~gm.identity.nodes.NodeIdentity`); they are
derived, not random, so a reconcile builds the same env every time and never restarts a worker.
The values are plain env, as Sedna injects its S3 credentials (KubeEdge could not resolve
``secretKeyRef``): whoever may read the Pod spec may read them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from sedna.controlplane import credentials


class KeySource(Protocol):
    def worker_key(self, node: str) -> bytes:
        """The key ``node``'s LC checks worker credentials with."""
        ...

    def job_key(self, uid: str) -> bytes:
        """The signing key of the federated job with ``uid``."""
        ...


def fl_client_credential(key: bytes, job_name: str, client_id: str) -> str:
    """A trainer's ``AGG_CLIENT_TOKEN``: the formula the aggregator checks (``docs/federated.md``)."""
    return hmac.new(key, f"sedna-fl/{job_name}/{client_id}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WorkerCredentials:
    """Issues the credentials of the module docstring from ``keys``."""

    keys: KeySource

    def lc_token(self, node: str, kind: str, namespace: str, owner: str, worker: str, prefix: bool = False) -> str:
        """``LC_TOKEN`` of a worker of ``kind`` (lowercase) ``namespace/owner`` named ``worker`` on ``node``."""
        claims = credentials.WorkerClaims(kind, namespace, owner, worker, prefix)
        return credentials.issue(self.keys.worker_key(node), claims)

    def fl_job_key(self, uid: str) -> str:
        """``AGG_CLIENT_KEY`` of the federated job with ``uid`` (hex)."""
        return self.keys.job_key(uid).hex()

    def fl_trainer_token(self, uid: str, job_name: str, client_id: str) -> str:
        """``AGG_CLIENT_TOKEN`` of trainer ``client_id`` of that job."""
        return fl_client_credential(self.fl_job_key(uid).encode(), job_name, client_id)
