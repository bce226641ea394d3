"""Errors raised when a message or record breaks the GM <-> LC contract.

::

    ContractError (ValueError)
    ├── MalformedMessage   a hub message cannot be decoded; ``seq`` is set for reports
    └── BadReport          a report field is wrong; ``field`` names it (``ownerInfo.fallbacks``)

The LC answers a :class:`BadReport` from a worker with HTTP 400; the GM rejects an upstream
report that raises any :class:`ContractError` with the message as the reason. Nothing is
stored in either case.
"""

from __future__ import annotations


class ContractError(ValueError):
    """A message or record does not fit the GM <-> LC contract."""


class MalformedMessage(ContractError):
    """A hub message cannot be decoded; ``seq`` is set when it is a report (so it can be rejected)."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class BadReport(ContractError):
    """A report is malformed; the message names ``field``, shows the value and says what is expected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field {field!r}: {message}")
        self.field = field


__all__ = ["BadReport", "ContractError", "MalformedMessage"]
