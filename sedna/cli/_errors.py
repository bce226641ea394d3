"""CLI errors: a one-line message and an exit code."""

from __future__ import annotations


class CliError(Exception):
    """Printed as ``sedna: <message>``; the command exits with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
