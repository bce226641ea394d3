"""The ``sedna`` command line.

Each sub-command group lives in its own module exposing ``register(subparsers)``;
``main`` builds the parser from :data:`COMMAND_MODULES`. The CLI starts the Global
Manager and Local Controllers as processes (``python -m gm``, ``python -m lc``),
never by import (DESIGN §1). Errors read ``error: ...`` (:mod:`._errors`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sedna.cli._errors import Parser, guarded

COMMAND_MODULES = ("sedna.cli.local", "sedna.cli.resources", "sedna.cli.waiting", "sedna.cli.device",
                   "sedna.cli.completion")


def version_text() -> str:
    """``sedna-py <version>`` from the installed package's metadata."""
    import sedna

    return f"{sedna.DISTRIBUTION} {sedna.__version__}"


class _Version(argparse.Action):
    """``--version``: print the version and exit (read only when asked: metadata lookups cost time)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every sub-command module registered."""
    parser = Parser(prog="sedna", description="Sedna-py edge-cloud collaborative AI")
    parser.add_argument("--version", action=_Version)
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
    return guarded(handler)(args)


if __name__ == "__main__":
    sys.exit(main())
