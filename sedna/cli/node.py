"""``sedna node list | rotate NODE | revoke NODE``: the node credentials the GM issued (``docs/identity.md``).

Each node's credential is the Secret ``sedna-node-<node>`` in the GM's namespace (``--identity-namespace``,
default ``sedna``), reached through the GM's API like any other object; on Kubernetes ``kubectl``
does the same (``kubectl annotate secret sedna-node-<node> sedna.io/rotate=<now>``, ``kubectl delete
secret sedna-node-<node>``).

- ``list``: every node credential, its expiry and whether a rotation is pending;
- ``rotate``: sets the Secret's ``sedna.io/rotate`` annotation; the GM sends the node a new token
  over its live stream (or when it next connects) and retires the old one once the LC stored it;
- ``revoke``: deletes the Secret; the GM drops the node's stream within seconds and refuses its
  token. The node may join again with a bootstrap token.
"""

from __future__ import annotations

import argparse
import base64
import time
from typing import Any

from sedna.cli._client import Client, add_connection_flags
from sedna.cli._errors import CliError, guarded

SECRET_PREFIX = "sedna-node-"
ROTATE_ANNOTATION = "sedna.io/rotate"


def register(subparsers: Any) -> None:
    """Add the ``node`` command group to the ``sedna`` parser."""
    node = subparsers.add_parser("node", help="node credentials: list, rotate, revoke")
    commands = node.add_subparsers(dest="node_command", metavar="SUBCOMMAND", required=True)
    for name, fn, text, takes_node in (("list", list_nodes, "list node credentials", False),
                                       ("rotate", rotate, "give a node a new token over its live stream", True),
                                       ("revoke", revoke, "revoke a node's credential (its stream ends)", True)):
        p = commands.add_parser(name, help=text)
        if takes_node:
            p.add_argument("node", help="the node's name")
        add_connection_flags(p)
        p.add_argument("--identity-namespace", default="sedna",
                       help="the GM's namespace, where node credentials live (default sedna)")
        p.set_defaults(handler=guarded(fn))


def _path(args: argparse.Namespace, name: str = "") -> str:
    base = f"/api/v1/namespaces/{args.identity_namespace}/secrets"
    return f"{base}/{name}" if name else base


def _field(secret: dict[str, Any], key: str) -> str:
    try:
        return base64.b64decode((secret.get("data") or {}).get(key) or "").decode()
    except ValueError:
        return ""


def _when(seconds: str) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds))) if seconds.isdigit() else "-"


def list_nodes(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    try:
        items = client.request("GET", _path(args), params={"labelSelector": "sedna.io/credential=node"})["items"]
    finally:
        client.close()
    rows = [("NODE", "ISSUED", "EXPIRES", "ROTATION")]
    for secret in sorted(items, key=lambda s: s["metadata"]["name"]):
        annotations = secret["metadata"].get("annotations") or {}
        pending = annotations.get(ROTATE_ANNOTATION, "") not in ("", _field(secret, "rotated"))
        unconfirmed = bool(_field(secret, "previousTokenSha256"))
        state = "requested" if pending else "awaiting the LC" if unconfirmed else "-"
        rows.append((_field(secret, "node"), _when(_field(secret, "issued")), _when(_field(secret, "expires")), state))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def rotate(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    try:
        secret = client.request("GET", _path(args, SECRET_PREFIX + args.node), allow_404=True)
        if secret is None:
            raise CliError(f"node {args.node!r} has no issued credential in namespace {args.identity_namespace!r} "
                           "(it never joined, or uses a pre-shared token)")
        secret["metadata"].setdefault("annotations", {})[ROTATE_ANNOTATION] = str(time.time_ns())
        client.request("PUT", _path(args, SECRET_PREFIX + args.node), body=secret)
    finally:
        client.close()
    print(f"node {args.node}: rotation requested; the GM sends the new token over the node's stream "
          "(at once if it is connected, else when it connects)")
    return 0


def revoke(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    try:
        found = client.request("DELETE", _path(args, SECRET_PREFIX + args.node), allow_404=True)
    finally:
        client.close()
    if found is None:
        raise CliError(f"node {args.node!r} has no issued credential in namespace {args.identity_namespace!r}")
    print(f"node {args.node}: credential revoked; its stream is dropped and its token refused. It may join again "
          "with a bootstrap token.")
    return 0
