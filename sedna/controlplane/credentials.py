"""Worker credentials: what the GM puts in a worker's ``LC_TOKEN`` and its node's LC checks.

A worker acts only for its owner (DESIGN §7). The GM issues each worker a credential bound to
its owner's lowercase kind, namespace and name and to its worker name, signed with its node's
**worker key** (HMAC-SHA256); the LC received that key from the GM at join and over the edge
hub stream, so it verifies a credential with no lookup and no table of its own. A Deployment's
replicas learn their worker name (the Pod name) only at run time, so their credential binds a
name *prefix* (the Deployment's name followed by ``-``) instead.

Wire form: ``sw1.<claims>.<mac>``: ``claims`` is the base64url (unpadded) JSON
``{"k": kind, "n": namespace, "o": owner name, "w": worker or prefix, "p": 1 for a prefix}``,
``mac`` the base64url HMAC-SHA256 of ``"sedna-worker/v1." + claims`` under the worker key.
:func:`issue` and :func:`verify` are the only two functions that know it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from sedna.controlplane.errors import ContractError

PREFIX = "sw1."
"""Every worker credential starts with this (tells it apart from an operator token)."""
_DOMAIN = b"sedna-worker/v1."


class BadCredential(ContractError):
    """A worker credential is malformed, or was not signed with this node's worker key."""


@dataclass(frozen=True)
class WorkerClaims:
    """Who a worker credential speaks for."""

    kind: str
    """Lowercase kind of the owner (``jointinferenceservice``)."""
    namespace: str
    owner: str
    """The owner's name."""
    worker: str
    """The worker name, or the prefix every worker name of a Deployment starts with."""
    prefix: bool = False

    def mismatch(self, kind: str, namespace: str, owner: str, worker: str) -> str:
        """Why a report with these fields is not this worker's to make ('' when it is)."""
        for name, mine, theirs in (("ownerKind", self.kind, kind), ("namespace", self.namespace, namespace),
                                   ("ownerName", self.owner, owner)):
            if mine != theirs:
                return f"{name} {theirs!r} is not the credential's {mine!r}"
        if self.prefix and not (worker.startswith(self.worker) and len(worker) > len(self.worker)):
            return f"worker {worker!r} does not start with the credential's {self.worker!r}"
        if not self.prefix and worker != self.worker:
            return f"worker {worker!r} is not the credential's {self.worker!r}"
        return ""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, claims: str) -> bytes:
    return hmac.new(key, _DOMAIN + claims.encode(), hashlib.sha256).digest()


def issue(key: bytes, claims: WorkerClaims) -> str:
    """The credential for ``claims`` under the node's worker ``key``."""
    if not key:
        raise ValueError("the worker key is empty")
    body = json.dumps({"k": claims.kind, "n": claims.namespace, "o": claims.owner, "w": claims.worker,
                       "p": int(claims.prefix)}, separators=(",", ":"), sort_keys=True)
    encoded = _b64(body.encode())
    return f"{PREFIX}{encoded}.{_b64(_mac(key, encoded))}"


def verify(key: bytes, credential: str) -> WorkerClaims:
    """The claims of ``credential`` if ``key`` signed it; :class:`BadCredential` otherwise."""
    if not credential.startswith(PREFIX):
        raise BadCredential(f"not a worker credential (expected it to start with {PREFIX!r})")
    encoded, _, mac = credential[len(PREFIX):].partition(".")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise BadCredential("the credential's signature is not base64url") from None
    if not key or not hmac.compare_digest(given, _mac(key, encoded)):
        raise BadCredential("the credential was not issued for this node (signature does not match)")
    try:
        body = json.loads(_unb64(encoded))
        return WorkerClaims(str(body["k"]), str(body["n"]), str(body["o"]), str(body["w"]), bool(body["p"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadCredential("the credential's claims are malformed") from None


__all__ = ["PREFIX", "BadCredential", "WorkerClaims", "issue", "verify"]
