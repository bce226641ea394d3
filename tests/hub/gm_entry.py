"""A GM for hub tests and the hub benchmark: ``LocalStore(--db)`` + ``start_hub``, until SIGTERM.

``python -m tests.hub.gm_entry --db FILE --port P --tokens edge-0=tok,... --metrics-port M``
(``--tokens-file F`` reads ``node=token`` lines instead, for more nodes than a command line holds;
plus ``--tls-cert/--tls-key`` to serve TLS, ``--client-ca`` for mutual TLS,
``--api-port A --api-token T`` to serve the local REST API as ``python -m gm`` does,
``--bootstrap-token`` to let LCs join, ``--credential-ttl`` / ``--rotation-grace`` for the node
credentials, ``--default-node`` for the router and ``--controller-handlers`` to file reports as the
controllers do).
Tests change objects by opening their own ``LocalStore`` on the same file (its watch polls the
database, so this process sees other processes' writes) or, as ``sedna apply`` does, through the
API, whose writes this process's watchers see at once; they read the hub's Prometheus
metrics on ``--metrics-port``. Everything listens on 127.0.0.1 only; the API and the metrics
are up once the metrics port accepts connections.
"""

from __future__ import annotations

import argparse
import signal
import threading

from sedna.common import log


def raise_open_files_limit() -> None:
    """Lift the soft limit of open files to the hard one: every node's stream is a socket."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", default="", help="pre-shared node=token,node=token")
    parser.add_argument("--bootstrap-token", action="append", default=[],
                        help="a bootstrap token LCs may join with: TOKEN [expires=..] [nodes=..] [uses=..]")
    parser.add_argument("--credential-ttl", type=float, default=30 * 86400.0)
    parser.add_argument("--rotation-grace", type=float, default=600.0)
    parser.add_argument("--default-node", default="", help="node of cloud workers without one (router)")
    parser.add_argument("--controller-handlers", action="store_true",
                        help="register the controllers' upstream handlers (IL, FL, Model), as python -m gm does")
    parser.add_argument("--tokens-file", default="", help="a file of node=token lines (for many nodes)")
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument("--ack-timeout", type=float, default=10.0)
    parser.add_argument("--dead-after", type=float, default=20.0)
    parser.add_argument("--tls-cert", default="", help="serve TLS with this certificate (and --tls-key)")
    parser.add_argument("--tls-key", default="")
    parser.add_argument("--client-ca", default="", help="require client certificates signed by this CA (mTLS)")
    parser.add_argument("--api-port", type=int, default=0,
                        help="serve the local REST API (validated as python -m gm does) on this port; 0: none")
    parser.add_argument("--api-token", default="", help="bearer token the REST API requires (with --api-port)")
    args = parser.parse_args()
    if args.api_port and not args.api_token:
        parser.error("--api-port needs --api-token")
    if not args.tokens and not args.tokens_file and not args.bootstrap_token:
        parser.error("give --tokens, --tokens-file or --bootstrap-token")
    raise_open_files_limit()
    log.configure()
    from prometheus_client import start_http_server

    from gm.app import settle_startup_heap
    from gm.cluster.local.store import LocalStore
    from gm.hub.server import HubTLS, start_hub
    from gm.hub.sessions import HubSettings
    from gm.identity import IdentitySettings, NodeIdentity
    from gm.identity.bootstrap import parse_line

    pairs = args.tokens.split(",")
    if args.tokens_file:
        with open(args.tokens_file, encoding="utf-8") as lines:
            pairs += [line.strip() for line in lines]
    tokens = dict(pair.split("=", 1) for pair in pairs if pair)
    store = LocalStore(args.db, poll_interval=0.05)
    tls = HubTLS(args.tls_cert, args.tls_key, args.client_ca) if args.tls_cert else None
    identity = NodeIdentity(store, IdentitySettings(
        credential_ttl=args.credential_ttl, rotation_grace=args.rotation_grace, preshared=tokens,
        bootstrap_tokens=tuple(parse_line(line, "--bootstrap-token") for line in args.bootstrap_token)))
    identity.start()
    handle = start_hub(store, "127.0.0.1", args.port, tls=tls, identity=identity,
                       settings=HubSettings(ack_timeout=args.ack_timeout, dead_after=args.dead_after,
                                            default_node=args.default_node))
    if args.controller_handlers:
        from gm.controllers.setup import UPSTREAM_HANDLERS

        for kind, handler in UPSTREAM_HANDLERS.items():
            handle.handlers.register(kind, handler)
    api = None
    if args.api_port:
        from gm import schema
        from gm.app import validate_object
        from gm.cluster.local.api import create_api, serve_api

        schema.warm()
        api = serve_api(create_api(store, args.api_token, validate_object), "127.0.0.1", args.api_port)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="127.0.0.1", registry=handle.registry)
    settle_startup_heap()  # as python -m gm does once it has started
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    serving = f", API on 127.0.0.1:{api.port}" if api else ""
    print(f"gm_entry ready on 127.0.0.1:{handle.port}{serving}", flush=True)
    done.wait()
    if api is not None:
        api.stop()
    handle.stop(grace=0.5)
    identity.stop()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
