"""The Local Controller's exception tree.

::

    LCError
    ├── SettingsError (ValueError)   a flag, env var or file of the LC's settings is malformed
    └── BadReport (ValueError)       a worker report is malformed; ``field`` names the culprit

Messages name the field or setting, show the offending value with ``!r`` and say what is expected.
"""

from __future__ import annotations


class LCError(Exception):
    """Base class of errors the Local Controller raises on purpose."""


class SettingsError(LCError, ValueError):
    """A setting is missing or malformed."""


class BadReport(LCError, ValueError):
    """A worker report is malformed; the API answers 400 with this message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field {field!r}: {message}")
        self.field = field
