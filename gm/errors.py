"""Every error the Global Manager raises on purpose, in one tree.

::

    GMError
    ├── SettingsError                  a flag or env value is malformed            gm.settings
    ├── ClusterError                   a backend call failed                        gm.cluster.interface
    │   ├── NotFound (LookupError)     the named object does not exist
    │   ├── AlreadyExists              an object with that name exists (or is still being deleted)
    │   ├── Conflict                   stale resourceVersion: read again and retry
    │   ├── Invalid (ValueError)       the object fails validation; ``causes`` names the fields
    │   └── Expired                    a watch's resourceVersion is gone (HTTP 410): list again
    ├── ReconcileError                 raised by a reconciler on purpose           gm.runtime.outcomes
    │   ├── PermanentError             not retried until the object changes
    │   └── TemporaryError             retried after ``delay`` (or the key's backoff)
    ├── MalformedReport                an edge report does not fit its kind; the message names the field
    └── StatusFailure                  the local REST API answers with a Kubernetes ``Status`` body

Two of them also belong to a tree outside the GM: :class:`SettingsError` is a
:class:`sedna.common.errors.SettingsError` (one ``except`` for a bad setting of any Sedna-py
program) and :class:`MalformedReport` a :class:`sedna.controlplane.errors.ContractError` (what the
edge hub rejects a report for); both are ``ValueError`` s.

The classes are defined here once; the layer that raises them re-exports them
(``gm.cluster.interface.NotFound`` is ``gm.errors.NotFound``), so callers import from the layer
they talk to and ``except GMError`` catches every deliberate GM failure. Anything else that
escapes a reconciler is a bug or an outage, and the runtime logs it with its traceback and retries.
"""

from __future__ import annotations

from typing import Any

from sedna.common import errors as sedna_errors
from sedna.controlplane.errors import ContractError

__all__ = [
    "AlreadyExists",
    "ClusterError",
    "Conflict",
    "Expired",
    "GMError",
    "Invalid",
    "MalformedReport",
    "NotFound",
    "PermanentError",
    "ReconcileError",
    "SettingsError",
    "StatusFailure",
    "TemporaryError",
]


class GMError(Exception):
    """Base of every error the Global Manager raises on purpose."""


class SettingsError(GMError, sedna_errors.SettingsError):
    """A flag or env value is malformed; the message names the flag, the value and the expected form."""


class ClusterError(GMError):
    """A cluster backend call failed."""


class NotFound(ClusterError, LookupError):
    """The named object does not exist."""


class AlreadyExists(ClusterError):
    """An object with that name already exists (on Kubernetes, possibly one still being deleted)."""


class Conflict(ClusterError):
    """The object changed since it was read (stale resourceVersion)."""


class Invalid(ClusterError, ValueError):
    """The object fails validation; ``causes`` lists ``(field path, message)`` pairs."""

    def __init__(self, message: str, causes: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.causes = causes or []


class Expired(ClusterError):
    """The requested resourceVersion is too old (HTTP 410 Gone, or compacted away): list again, then watch."""


class ReconcileError(GMError):
    """Base of the errors a reconciler raises on purpose."""


class PermanentError(ReconcileError):
    """Retrying will not help; the key is forgotten until a new event arrives."""


class TemporaryError(ReconcileError):
    """Retry later: after ``delay`` seconds, or with the key's exponential backoff when None."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class MalformedReport(GMError, ContractError):
    """An edge report's payload does not fit its kind; the message names the field."""


class StatusFailure(GMError):
    """An HTTP error of the local REST API, carrying its Kubernetes ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, causes: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.body: dict[str, Any] = status_body(code, reason, message, causes)


def status_body(code: int, reason: str, message: str, causes: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A Kubernetes ``Status`` object describing a failure."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "reason": reason, "message": message, "code": code}
    if causes:
        body["details"] = {"causes": [{"field": f, "message": m, "reason": "FieldValueInvalid"} for f, m in causes]}
    return body
