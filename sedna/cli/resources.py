"""``sedna apply | get | describe | delete | logs``: resources through the local API.

Manifests are multi-document YAML; ``apply`` prints ``<kind>/<name> created|configured|
unchanged`` per document and, when the API refuses one (422), every bad field; it exits
non-zero if any document failed. ``get`` prints the CRD printer columns. Nothing here
imports ``gm``: the CLI is an HTTP client of the API that ``sedna local up`` starts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sedna.cli import _kinds, getting, rounds
from sedna.cli._client import ApiError, Client, add_connection_flags
from sedna.cli._describe import describe
from sedna.cli._errors import CliError, guarded
from sedna.common import manifests


def register(subparsers: Any) -> None:
    """Add apply, get, describe, delete and logs."""
    p = subparsers.add_parser("apply", help="create or update resources from YAML")
    p.add_argument("-f", "--filename", required=True, help="a YAML file or a directory of them")
    _finish(p, apply)
    p.set_defaults(namespace=None)  # None: -n not given, so a manifest's metadata.namespace decides
    getting.register(subparsers)
    p = subparsers.add_parser("describe", help="show a resource with its conditions, events and workers",
                              epilog="resource types (plural, short name, kind):\n" + _kinds.names_help(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", help="resource type (plural, singular or short name), or KIND/NAME")
    p.add_argument("name", nargs="?")
    _finish(p, describe_cmd)
    p = subparsers.add_parser("delete", help="delete resources by name or by manifest")
    p.add_argument("kind", nargs="?")
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--filename")
    _finish(p, delete)
    p = subparsers.add_parser("logs", help="print a pod's log")
    p.add_argument("pod")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, default=None)
    p.add_argument("-c", "--container", default=None)
    _finish(p, logs)


def _finish(parser: argparse.ArgumentParser, fn: Any) -> None:
    add_connection_flags(parser)
    parser.set_defaults(handler=guarded(fn))


def load_manifests(path_text: str) -> list[tuple[str, dict[str, Any]]]:
    """``(where, document)`` for every non-empty YAML document in a file or a directory's *.yaml/*.yml."""
    path = Path(path_text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    elif path.exists():
        files = [path]
    else:
        raise CliError(f"-f: {path_text!r} does not exist")
    docs: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        try:
            loaded = manifests.load_bounded(file.read_text())
        except manifests.ManifestLimitError as exc:
            raise CliError(f"{file}: refused: {exc}") from None
        except yaml.YAMLError as exc:
            raise CliError(f"{file}: not valid YAML: {exc}".replace("\n", " ")) from None
        for i, doc in enumerate(loaded):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise CliError(f"{file}: document {i + 1}: expected a mapping, got {type(doc).__name__}")
            docs.append((f"{file}: document {i + 1}", doc))
    if not docs:
        raise CliError(f"-f: no resources found in {path_text!r}")
    return docs


def _name_of(doc: dict[str, Any], where: str) -> str:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise CliError(f"{where}: metadata.name: required")
    return str(meta["name"])


def namespace_of(doc: dict[str, Any], flag: str | None, where: str) -> str:
    """The namespace a manifest goes to: its ``metadata.namespace``, else ``-n``, else ``default``.

    As kubectl does, a ``metadata.namespace`` that differs from an explicit ``-n`` is refused
    rather than either silently winning.
    """
    own = (doc.get("metadata") or {}).get("namespace")
    if own and flag and own != flag:
        raise CliError(f"{where}: metadata.namespace {own!r} does not match the namespace {flag!r} given with -n; "
                       f"pass -n {own} (or no -n), or change the manifest")
    return str(own or flag or "default")


def apply(args: argparse.Namespace) -> int:
    docs = load_manifests(args.filename)
    client = Client.from_args(args)
    try:
        failed = sum(not _apply_doc(client, args.namespace, where, doc) for where, doc in docs)
    finally:
        client.close()  # `main(["apply", ...])` runs in-process too: leave no socket open
    return 1 if failed else 0


def _apply_doc(client: Client, flag: str | None, where: str, doc: dict[str, Any]) -> bool:
    """Apply one manifest document, printing the outcome; False when it failed."""
    try:
        info = _kinds.of_object(doc, where)
        name = _name_of(doc, where)
        ns = namespace_of(doc, flag, where)
        print(f"{info.ref}/{name} {_apply_one(client, info, ns, name, doc)}")
    except ApiError as exc:
        ref = f"{doc.get('kind', '?').lower()}/{(doc.get('metadata') or {}).get('name', '?')}"
        print(f"error: {ref}: {exc}", file=sys.stderr)
        for field, message in exc.causes:
            print(f"  {field}: {message}", file=sys.stderr)
        return False
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    return True


def _apply_one(client: Client, info: _kinds.KindInfo, ns: str, name: str, doc: dict[str, Any]) -> str:
    current = client.request("GET", info.path(ns, name), allow_404=True)
    if current is None:
        client.request("POST", info.path(ns), doc)
        return "created"
    want_meta, have_meta = doc.get("metadata") or {}, current.get("metadata") or {}
    same = all(doc.get(k) == current.get(k) for k in doc if k not in ("metadata", "status", "apiVersion", "kind"))
    same = same and all((want_meta.get(k) or {}) == (have_meta.get(k) or {}) for k in ("labels", "annotations"))
    if same:
        return "unchanged"
    body = {k: v for k, v in doc.items() if k != "status"}
    body["metadata"] = {**want_meta, "resourceVersion": have_meta.get("resourceVersion"), "namespace": ns}
    client.request("PUT", info.path(ns, name), body)
    return "configured"


def describe_cmd(args: argparse.Namespace) -> int:
    kind, name = getting.split_ref(args.kind, args.name)
    if not name:
        raise CliError("describe: give KIND NAME or KIND/NAME")
    info = _kinds.find(kind)
    client = Client.from_args(args)
    obj = client.request("GET", info.path(args.namespace, name), allow_404=True)
    if obj is None:
        raise CliError(f"{info.ref} {name!r} not found in namespace {args.namespace!r}")
    print(describe(client, info, obj, Path(args.state_dir), bars=_bars_for(sys.stdout)))
    return 0


def _bars_for(stream: Any) -> str:
    try:
        rounds.BARS.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return rounds.ASCII_BARS
    return rounds.BARS


def delete(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    if args.filename:
        targets = []
        for where, doc in load_manifests(args.filename):
            info = _kinds.of_object(doc, where)
            targets.append((info, doc["metadata"].get("namespace") or args.namespace, _name_of(doc, where)))
    elif args.kind and args.name:
        targets = [(_kinds.find(args.kind), args.namespace, args.name)]
    else:
        raise CliError("delete: give KIND NAME or -f FILE")
    missing = 0
    for info, ns, name in targets:
        if client.request("DELETE", info.path(ns, name), allow_404=True) is None:
            missing += 1
            print(f"error: {info.ref} {name!r} not found in namespace {ns!r}", file=sys.stderr)
        else:
            print(f"{info.ref}/{name} deleted")
    return 1 if missing else 0


def logs(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    kind, _, name = args.pod.rpartition("/")  # `pod/NAME`, as `sedna get pods -o name` prints it
    if kind and kind not in {"pod", "pods", "po"}:
        raise CliError(f"logs: {args.pod!r} is not a pod (expected NAME or pod/NAME)")
    path = _kinds.find("pods").path(args.namespace, name) + "/log"
    params: dict[str, Any] = {}
    if args.container:
        params["container"] = args.container
    if args.tail is not None:
        if args.tail < 0:
            raise CliError(f"--tail: expected a number >= 0, got {args.tail}")
        params["tailLines"] = args.tail
    text = client.request("GET", path, params=params)
    sys.stdout.write(text)
    sys.stdout.flush()
    if not args.follow:
        return 0
    seen = len(client.request("GET", path, params={k: v for k, v in params.items() if k != "tailLines"}))
    while True:  # poll the whole log and print what is new; ends with Ctrl-C or when the pod is gone
        time.sleep(0.5)
        try:
            full = client.request("GET", path, params={k: v for k, v in params.items() if k != "tailLines"})
        except ApiError as exc:
            if exc.status == 404:
                return 0
            raise
        if len(full) > seen:
            sys.stdout.write(full[seen:])
            sys.stdout.flush()
        seen = len(full)
