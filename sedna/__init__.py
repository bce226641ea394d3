"""Sedna-py: the SDK that edge and cloud workers import.

Importing ``sedna`` is cheap: heavy dependencies (onnxruntime, grpc, kubernetes,
paho-mqtt) are imported by the modules that need them, never here. ``sedna.__version__``
is the installed distribution's version (``setup.cfg`` is the one place it is written),
read from package metadata on first use.
"""

from __future__ import annotations

from functools import lru_cache

DISTRIBUTION = "sedna-py"
UNKNOWN_VERSION = "0+unknown"

__all__ = ["__version__"]


@lru_cache(maxsize=1)
def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return UNKNOWN_VERSION


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'sedna' has no attribute {name!r}")
