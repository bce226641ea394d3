"""``sedna get``: list resources or show one, once or as they change (``-w``).

``sedna get KIND [NAME] [-o wide|yaml|json|name] [-w] [-l SELECTOR] [-A]`` reads the local API
as kubectl reads a Kubernetes API server: a list (its resourceVersion noted), then, with
``--watch``, the HTTP watch from that version (:mod:`._watch`), printing one row per change until
Ctrl-C. KIND is a plural, singular or short name (``ji``, ``fl``, ``il``, ``ll``, ``po``, ...),
and ``KIND/NAME`` works too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sedna.cli import _kinds, _output, _watch
from sedna.cli._client import Client, add_connection_flags
from sedna.cli._errors import CliError, guarded


def register(subparsers: Any) -> None:
    """Add ``get``."""
    p = subparsers.add_parser(
        "get", help="list resources or show one (-w: watch them change)",
        description="List resources of a kind, or show one; with -w keep printing changes until Ctrl-C.",
        epilog="resource types (plural, short name, kind):\n" + _kinds.names_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", help="resource type: plural, singular or short name, or KIND/NAME")
    p.add_argument("name", nargs="?", help="one object's name (default: all of the kind)")
    p.add_argument("-o", "--output", choices=_output.FORMATS, default=None,
                   help="wide (more columns), yaml, json or name (kind/name); default: a table")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, print every change until Ctrl-C")
    p.add_argument("--output-watch-events", action="store_true",
                   help="with --watch, show the event type (ADDED, MODIFIED, DELETED) of each change")
    p.add_argument("-l", "--selector", default=None, help="label selector, e.g. app=x,tier=edge")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list every namespace")
    add_connection_flags(p)
    p.set_defaults(handler=guarded(get))


def split_ref(kind: str, name: str | None) -> tuple[str, str | None]:
    """``KIND NAME`` or ``KIND/NAME`` -> ``(kind, name)``."""
    if "/" in kind and name is None:
        kind, _, name = kind.partition("/")
        if not name:
            raise CliError(f"{kind}/: a name is required after the slash")
    return kind, name


def get(args: argparse.Namespace) -> int:
    kind, name = split_ref(args.kind, args.name)
    info = _kinds.find(kind)
    client = Client.from_args(args)
    namespace = None if args.all_namespaces or not info.namespaced else args.namespace
    printer = _output.Printer(info, args.output, sys.stdout, pods=lambda ns: _pods(client, ns),
                              watch_events=args.output_watch_events, all_namespaces=namespace is None
                              and info.namespaced)
    if name:
        obj = client.request("GET", info.path(args.namespace, name), allow_404=True)
        if obj is None:
            raise CliError(f"{info.ref} {name!r} not found in namespace {args.namespace!r}")
        objs, rv = [obj], str(obj["metadata"].get("resourceVersion") or "")
    else:
        objs, rv = _watch.listing(client, info, namespace, args.selector)
    if args.watch:  # as kubectl: the current objects one by one, then the changes
        for obj in objs:
            printer.event("ADDED", obj)
    else:
        printer.listing(objs, single=bool(name))
    if not objs and not args.output and not args.watch:
        where = "any namespace" if namespace is None and info.namespaced else f"namespace {args.namespace}"
        print(f"No {info.plural} found in {where}." if info.namespaced else f"No {info.plural} found.",
              file=sys.stderr)
    if not args.watch:
        return 0
    for type_, obj in _watch.follow(client, info, namespace, rv, objs, args.selector):
        if name and obj["metadata"].get("name") != name:
            continue
        printer.event(type_, obj)
    return 0


def _pods(client: Client, namespace: str | None) -> list[dict[str, Any]]:
    pods = _kinds.find("pods")
    return list(client.request("GET", pods.path(namespace)).get("items") or [])
