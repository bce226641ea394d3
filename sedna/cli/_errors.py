"""CLI errors: a one-line message and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class CliError(Exception):
    """Printed as ``sedna: <message>``; the command exits with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def guarded(fn: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], int]:
    """A sub-command handler: ``CliError`` becomes ``sedna: <message>`` and its code; Ctrl-C exits 130."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except CliError as exc:
            print(f"sedna: {exc}", file=sys.stderr)
            return exc.code
        except KeyboardInterrupt:
            return 130

    return handler
