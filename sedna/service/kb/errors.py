"""Errors of the knowledge-base service and its clients.

::

    SednaError
    └── KBError
        ├── KBValidationError (ValueError)   an index or blob fails its schema, hash, size or format
        ├── KBNotFoundError (LookupError)    no such version, blob or task
        └── KBUnavailableError               the KB server cannot be reached or answered 5xx

``KBValidationError.field`` names what is wrong (``seen_task.task_groups[2].model.sha256``,
``blob``, ``body``); the server turns it into a 400/413/422 whose message starts with that name.
"""

from __future__ import annotations

from sedna.common.errors import SednaError


class KBError(SednaError):
    """Base class of knowledge-base errors."""


class KBValidationError(KBError, ValueError):
    """An index document or a blob was refused; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status


class KBNotFoundError(KBError, LookupError):
    """The version, blob or task does not exist."""


class KBUnavailableError(KBError):
    """The knowledge-base server cannot be reached, or failed."""
