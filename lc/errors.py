"""The Local Controller's exception tree.

::

    LCError
    └── SettingsError (sedna.common.errors.SettingsError)   a flag, env var or file of the LC's
                                                             settings is malformed

A malformed worker report raises :class:`sedna.controlplane.errors.BadReport` (the contract's
error, shared with the GM). Messages name the field or setting, show the offending value with
``!r`` and say what is expected.
"""

from __future__ import annotations

from sedna.common import errors


class LCError(Exception):
    """Base class of errors the Local Controller raises on purpose."""


class SettingsError(LCError, errors.SettingsError):
    """A setting is missing or malformed."""
