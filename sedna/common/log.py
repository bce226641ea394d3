"""Logging set-up shared by workers and servers.

Modules call :func:`get_logger`; only a program's ``main`` calls :func:`configure`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_logger(name: str) -> logging.Logger:
    """Return the logger for a module (``sedna.*`` names nest under ``sedna``)."""
    return logging.getLogger(name)


def configure(level: str | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Configure root logging once for a program; ``LOG_LEVEL`` is read when no level is given."""
    env = os.environ if environ is None else environ
    chosen = (level or env.get("LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=chosen, format=_FORMAT)
