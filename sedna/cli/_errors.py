"""CLI errors: one line starting ``error:``, and an exit code.

Every failure the CLI reports reads ``error: <what failed>`` on stderr, whether it comes from a
handler (:class:`CliError`), from argparse (bad flags, via :class:`Parser`) or from a missing
optional dependency (:func:`missing_module_message` names the pip package to install instead of
showing a traceback). Exit codes: 1 the command failed, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn

PREFIX = "error: "

# import name -> (distribution to install, extra of sedna-py that brings it, or "")
OPTIONAL_MODULES: dict[str, tuple[str, str]] = {
    "sklearn": ("scikit-learn", "dev"),
    "skl2onnx": ("skl2onnx", "dev"),
    "onnxruntime": ("onnxruntime", ""),
    "onnx": ("onnx", ""),
    "grpc": ("grpcio", ""),
    "paho": ("paho-mqtt", ""),
    "amqtt": ("amqtt", ""),
    "kubernetes": ("kubernetes", ""),
    "jinja2": ("jinja2", ""),
    "shtab": ("shtab", ""),
    "playwright": ("playwright", "dev"),
}


class CliError(Exception):
    """Printed as ``error: <message>``; the command exits with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def report(message: str) -> None:
    """Print ``error: <message>`` on stderr."""
    print(f"{PREFIX}{message}", file=sys.stderr)


def missing_module_message(exc: ModuleNotFoundError, command: str = "") -> str:
    """What to say when ``exc`` names a package that is not installed: which one, and how to get it."""
    top = (exc.name or "").split(".")[0]
    dist, extra = OPTIONAL_MODULES.get(top, (top, ""))
    needs = f"`sedna {command}` needs" if command else "this command needs"
    how = f"pip install {dist!r}" if not extra else f"pip install {dist!r} (or pip install 'sedna-py[{extra}]')"
    return f"{needs} the Python package {dist!r}, which is not installed: {how}"


def guarded(fn: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], int]:
    """A sub-command handler: ``CliError`` and missing packages become ``error: ...``; Ctrl-C exits 130."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except CliError as exc:
            report(str(exc))
            return exc.code
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] in ("sedna", "gm", "lc", "workers"):
                raise
            report(missing_module_message(exc, getattr(args, "command", "") or ""))
            return 1
        except ImportError as exc:  # raised by our own code with the remedy in it ("... pip install x")
            if "pip install" not in str(exc):
                raise
            report(str(exc))
            return 1
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `sedna get ... | head`: the reader left; nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail
            return 0

    return handler


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors read ``error: ...`` (and name the sub-command's help)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        report(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(2)
