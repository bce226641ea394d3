"""``sedna completion bash|zsh``: a shell completion script for the whole command line.

The script is generated from the CLI's own argparse parser by ``shtab`` (static: a TAB costs
no Python start-up), so sub-commands, flags and choices (``-o wide|yaml|json|name``) always
match the installed CLI. Resource kinds complete from the kind table (plural, singular and
short names); resource names complete by asking the running API, as
``sedna get KIND -o name`` would (``$SEDNA_STATE_DIR``/``./.sedna``; nothing when it is down).

Use: ``source <(sedna completion bash)`` in ``~/.bashrc``, or ``eval "$(sedna completion zsh)"``
in ``~/.zshrc`` after ``compinit`` (or save it as ``_sedna`` in a directory of ``$fpath``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sedna.cli._errors import guarded

SHELLS = ("bash", "zsh")
_KIND_COMMANDS = ("get", "describe", "delete", "wait")


def register(subparsers: Any) -> None:
    """Add ``completion``."""
    p = subparsers.add_parser("completion", help="print a bash or zsh completion script",
                              description=__doc__.split("\n\n")[0] if __doc__ else None,
                              epilog='bash: source <(sedna completion bash)\n'
                                     'zsh:  eval "$(sedna completion zsh)"  (after compinit)',
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(handler=guarded(run))


def script(shell: str) -> str:
    """The completion script for ``shell``."""
    import shtab

    from sedna.cli import _kinds, build_parser

    parser = build_parser()
    kinds = " ".join(_kinds.all_names())
    preamble = {
        "bash": (f"_sedna_kinds() {{ compgen -W '{kinds}' -- \"$1\"; }}\n"
                 "_sedna_names() {\n"
                 "  local kind=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
                 "  compgen -W \"$(sedna get \"$kind\" -o name 2>/dev/null | sed 's#.*/##')\" -- \"$1\"\n"
                 "}\n"),
        "zsh": ("_sedna_names() {\n"
                "  local kind=${words[CURRENT-1]}\n"
                "  compadd -- ${(f)\"$(sedna get $kind -o name 2>/dev/null | sed 's#.*/##')\"}\n"
                "}\n"),
    }
    for action in _positionals(parser, _KIND_COMMANDS):
        if action.dest in ("kind", "targets"):
            action.complete = {"bash": "_sedna_kinds", "zsh": f"({kinds})"}  # type: ignore[attr-defined]
        elif action.dest == "name":
            action.complete = {"bash": "_sedna_names", "zsh": "_sedna_names"}  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell, preamble=preamble)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0


def _positionals(parser: argparse.ArgumentParser, commands: tuple[str, ...]) -> list[argparse.Action]:
    found: list[argparse.Action] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name in commands:
                    found += [a for a in sub._actions if not a.option_strings]
    return found
