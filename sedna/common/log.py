"""Logging set-up shared by workers and servers.

Modules call :func:`get_logger`; only a program's ``main`` calls :func:`configure`.
Programs written for Sedna import its module-level ``LOGGER``; here it is the
``sedna`` logger behind a thin adapter that, on its first record, gives it a console
handler at ``LOG_LEVEL`` if the program has configured no logging itself (Sedna's
LOGGER always printed). Nothing is configured or read at import.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_logger(name: str) -> logging.Logger:
    """Return the logger for a module (``sedna.*`` names nest under ``sedna``)."""
    return logging.getLogger(name)


def configure(level: str | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Configure root logging once for a program; ``LOG_LEVEL`` is read when no level is given."""
    env = os.environ if environ is None else environ
    chosen = (level or env.get("LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=chosen, format=_FORMAT)


class _SednaLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Sedna's ``LOGGER``: the ``sedna`` logger, made visible on first use when nothing else is set up."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("sedna"), {})
        self._ready = False
        self._lock = threading.Lock()

    def _ensure_output(self) -> None:
        with self._lock:
            if self._ready:
                return
            self._ready = True
            if logging.getLogger().handlers or self.logger.handlers:
                return  # the program configured logging: leave it alone
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(_FORMAT))
            self.logger.addHandler(handler)
            level = (os.environ.get("LOG_LEVEL") or "INFO").upper()
            self.logger.setLevel(level if isinstance(logging.getLevelName(level), int) else "INFO")

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self._ready:
            self._ensure_output()
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs.setdefault("stacklevel", 2)  # report the caller's file and line, not this adapter's
        return msg, kwargs


LOGGER: logging.LoggerAdapter = _SednaLogger()  # type: ignore[type-arg]
"""Sedna's module-level logger (``from sedna.common.log import LOGGER``)."""
