"""The ``sedna`` command line.

Each sub-command group lives in its own module exposing ``register(subparsers)``;
``main`` builds the parser from :data:`COMMAND_MODULES`. The CLI starts the Global
Manager and Local Controllers as processes (``python -m gm``, ``python -m lc``),
never by import (DESIGN §1).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = ("sedna.cli.local", "sedna.cli.resources", "sedna.cli.device", "sedna.cli.node")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every sub-command module registered."""
    parser = argparse.ArgumentParser(prog="sedna", description="Sedna-py edge-cloud collaborative AI")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sedna`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    code = handler(args)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
