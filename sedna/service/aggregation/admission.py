"""Who may join a federated job as which client, and how much weight one update may carry.

**Per-trainer credentials.** A job token (``AGG_TOKEN``) only proves "some trainer of this
job"; any holder could then claim another trainer's client id. Here each trainer also holds a
credential bound to its client id, sent as ``sedna-client-credential`` metadata, and the
server admits an id only with its own credential. The aggregator needs no secret of any
trainer, only one of:

- a **signing key** (:class:`SignedCredentials`): the credential of client ``c`` in job ``j``
  is ``hex(HMAC-SHA256(key, "sedna-fl/j/c"))`` (:func:`issue_credential`). The GM keeps one key
  per job, gives it to the aggregator, and gives each trainer only its own credential;
- or the **set of hashes** (:class:`HashedCredentials`): ``{client_id: "sha256:<hex>"}`` of
  credentials generated elsewhere (:func:`credential_hash`).

Comparisons use :func:`hmac.compare_digest`. Without either, any client id is admitted (as
before), which the server logs at start.

**Sample caps.** FedAvg weighs each update by the ``num_samples`` its sender claims, so one
inflated claim (``2**62``) makes the global model that sender's. :class:`SampleCaps` bounds a
claim by a job-wide cap (``MAX_SAMPLES_PER_CLIENT``) and by the count known for that client's
Dataset (``AGG_CLIENT_SAMPLES``, e.g. what its Local Controller reported); an update over the
cap is refused with a reason naming both numbers, and so is a ``Hello`` over it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

CREDENTIAL_METADATA = "sedna-client-credential"
"""gRPC metadata key carrying a trainer's credential."""


def issue_credential(key: bytes | str, job_name: str, client_id: str) -> str:
    """The credential of ``client_id`` in ``job_name`` under the job's signing ``key``."""
    raw = key.encode() if isinstance(key, str) else key
    if not raw:
        raise ValueError("the signing key is empty")
    return hmac.new(raw, f"sedna-fl/{job_name}/{client_id}".encode(), hashlib.sha256).hexdigest()


def credential_hash(credential: str) -> str:
    """``sha256:<hex>`` of a credential: what a :class:`HashedCredentials` table stores."""
    return "sha256:" + hashlib.sha256(credential.encode()).hexdigest()


class Credentials(Protocol):
    """Checks that ``credential`` belongs to ``client_id``."""

    enabled: bool

    def verify(self, client_id: str, credential: str) -> bool: ...


class AnyClient:
    """No per-client credentials: every id is admitted (the job token, if set, still applies)."""

    enabled = False

    def verify(self, client_id: str, credential: str) -> bool:
        return True


class SignedCredentials:
    """Credentials derived from one signing key per job (see :func:`issue_credential`)."""

    enabled = True

    def __init__(self, key: bytes | str, job_name: str) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        if not self._key:
            raise ValueError("the signing key is empty")
        self._job = job_name

    def verify(self, client_id: str, credential: str) -> bool:
        expected = issue_credential(self._key, self._job, client_id)
        return hmac.compare_digest(expected.encode(), credential.strip().encode())


class HashedCredentials:
    """A table ``{client_id: "sha256:<hex>"}`` of the credentials each trainer holds."""

    enabled = True

    def __init__(self, hashes: Mapping[str, str]) -> None:
        table: dict[str, str] = {}
        for client_id, value in hashes.items():
            digest = str(value).removeprefix("sha256:").lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"credential hash of client {client_id!r} is not 'sha256:' + 64 hex digits")
            table[str(client_id)] = digest
        self._table = table

    def verify(self, client_id: str, credential: str) -> bool:
        expected = self._table.get(client_id)
        if expected is None:
            return False
        got = hashlib.sha256(credential.strip().encode()).hexdigest()
        return hmac.compare_digest(expected.encode(), got.encode())


@dataclass(frozen=True)
class SampleCaps:
    """Upper bounds on the ``num_samples`` a client may claim (0 or absent: no bound)."""

    max_per_client: int = 0
    """Job-wide cap (``MAX_SAMPLES_PER_CLIENT``)."""
    per_client: Mapping[str, int] = field(default_factory=dict)
    """Known sample count of each client's dataset (``AGG_CLIENT_SAMPLES``)."""

    def cap_for(self, client_id: str) -> int:
        """The tightest cap that applies to ``client_id`` (0: none)."""
        caps = [c for c in (self.max_per_client, self.per_client.get(client_id, 0)) if c > 0]
        return min(caps) if caps else 0

    def check(self, client_id: str, num_samples: int) -> str | None:
        """Why ``num_samples`` is not an acceptable claim for ``client_id``, or None."""
        if num_samples < 0:
            return f"num_samples={num_samples} is negative"
        cap = self.cap_for(client_id)
        if cap and num_samples > cap:
            source = ("the dataset count known for this client (AGG_CLIENT_SAMPLES)"
                      if cap == self.per_client.get(client_id) else "MAX_SAMPLES_PER_CLIENT")
            return f"num_samples={num_samples} exceeds the cap of {cap} from {source}"
        return None


class Refused(Exception):
    """A join refused; ``code`` is the gRPC status name to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Admission:
    """The checks of a ``Hello``: job, credential of the claimed id, declared sample count."""

    job_name: str = ""
    credentials: Credentials = field(default_factory=AnyClient)
    caps: SampleCaps = field(default_factory=SampleCaps)

    def check(self, client_id: str, job_name: str, num_samples: int, credential: str) -> None:
        """Raise :class:`Refused` unless the hello may join."""
        if not client_id:
            raise Refused("INVALID_ARGUMENT", "hello.client_id is empty")
        if self.job_name and job_name != self.job_name:
            raise Refused("PERMISSION_DENIED",
                          f"hello.job_name {job_name!r} is not this server's job {self.job_name!r}")
        if self.credentials.enabled and not (credential and self.credentials.verify(client_id, credential)):
            what = "no credential" if not credential else "a credential that is not its own"
            raise Refused("UNAUTHENTICATED", f"client id {client_id!r} sent {what} (metadata "
                                             f"'{CREDENTIAL_METADATA}'; set AGG_CLIENT_TOKEN on that trainer)")
        reason = self.caps.check(client_id, num_samples)
        if reason is not None:
            raise Refused("INVALID_ARGUMENT", f"hello.{reason}")
