"""The SDK's exception tree.

::

    SednaError
    ├── SettingsError (ValueError)      a flag, env var or settings file of a program is malformed
    │   └── ConfigError                 a worker env value or parameter is malformed
    ├── RegistryError (KeyError, ValueError)  a plug-in name is unknown or already taken
    ├── ModelLoadError (RuntimeError)   a model file is missing, corrupt or fails its checksum
    ├── DataSourceError (ValueError)    a dataset index file cannot be parsed
    └── InferenceError (RuntimeError)   an inference request failed
        ├── InvalidInputError (ValueError)   the request is malformed (names the field)
        ├── ModelNotFoundError (LookupError) the named model is not served here
        └── CloudUnavailableError            the cloud side cannot be reached in time

Messages say what failed, show the offending value with ``!r`` and, where there is
one, the remedy. The GM's and the LC's ``SettingsError`` subclass :class:`SettingsError`, so
one ``except`` catches a bad setting of any Sedna-py program.
"""

from __future__ import annotations


class SednaError(Exception):
    """Base class of every error the SDK raises on purpose."""


class SettingsError(SednaError, ValueError):
    """A setting (command-line flag, env var, settings file) is missing or malformed."""


class ConfigError(SettingsError):
    """A worker's configuration value (env var, parameter) is missing or malformed."""


class RegistryError(SednaError, KeyError, ValueError):
    """A plug-in name is unknown, or registered twice (a ValueError too, as Sedna raised)."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(SednaError, RuntimeError):
    """A model file cannot be read, parsed or verified."""


class DataSourceError(SednaError, ValueError):
    """A dataset index file cannot be parsed."""


class InferenceError(SednaError, RuntimeError):
    """An inference request failed."""


class InvalidInputError(InferenceError, ValueError):
    """An inference request is malformed; the message names the field."""


class ModelNotFoundError(InferenceError, LookupError):
    """The requested model is not served here."""


class CloudUnavailableError(InferenceError):
    """The cloud inference service failed, timed out, or its circuit is open."""
