"""The Local Controller's settings: grouped dataclasses built once in ``main()`` (STYLE habit 11).

Every value comes from a flag, else an env var, else a default; :func:`from_args` takes an
injectable ``environ`` so tests never touch ``os.environ``. Errors name the flag/env var, the bad
value and the expected form. Reading a token from a file (``--bootstrap-token-file``,
``--token-file``) keeps it out of ``ps`` output. The LC needs a way to authenticate to the GM: a
credential in its state dir (``node-credential.json``, written at join), a bootstrap token to
join with, or a pre-shared token (``docs/identity.md``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lc.errors import SettingsError


@dataclass(frozen=True)
class HubSettings:
    """How the LC reaches the GM's edge hub."""

    gm_address: str
    """``host:port`` of the GM edge hub (``--gm-address`` / ``GM_ADDRESS``)."""
    node: str
    """This node's name (``--node`` / ``NODE_NAME``)."""
    token: str = field(default="", repr=False)
    """A pre-shared token the GM knows for this node (``--token``, ``--token-file``, ``LC_HUB_TOKEN[_FILE]``);
    used only while the state dir holds no issued credential."""
    bootstrap_token: str = field(default="", repr=False)
    """Token to join with when the state dir holds no credential (``--bootstrap-token[-file]``,
    ``LC_BOOTSTRAP_TOKEN[_FILE]``)."""
    tls_ca: str = ""
    """PEM CA bundle that signs the GM's certificate; set it to use TLS (``--tls-ca``)."""
    tls_cert: str = ""
    """PEM client certificate for mutual TLS (``--tls-cert``)."""
    tls_key: str = ""
    """PEM key of ``tls_cert`` (``--tls-key``)."""
    tls_server_name: str = ""
    """Override the name checked against the GM's certificate (``--tls-server-name``)."""
    ping_interval: float = 5.0
    """Seconds after which a stream that carried no message both ways is pinged; 3 silent intervals drop the link
    (``--ping-interval``)."""
    ack_timeout: float = 10.0
    """Seconds after which an unacknowledged report is sent again (``--ack-timeout``)."""
    backoff_min: float = 0.5
    backoff_max: float = 15.0


@dataclass(frozen=True)
class APISettings:
    """The worker report API."""

    host: str = "127.0.0.1"
    port: int = 9100
    admin_token: str = field(default="", repr=False)
    """The operator's bearer token (lists objects, may report for any object held); empty means read or
    create ``<state-dir>/admin-token``. Never given to workers: they get their own credentials."""
    allow_unauthenticated_workers: bool = False
    """Accept reports without a credential (Sedna's own workers), still only about objects held."""
    tls_cert: str = ""
    """PEM certificate to serve HTTPS (``--api-tls-cert``); empty serves plain HTTP."""
    tls_key: str = ""


@dataclass(frozen=True)
class LCSettings:
    hub: HubSettings
    api: APISettings
    state_dir: Path
    """Holds ``lc.db`` (objects, outbox, counters), ``node-credential.json`` and ``admin-token``
    (``--state-dir`` / ``LC_STATE_DIR``)."""
    dataset_period: float = 60.0
    """Seconds between dataset index counts (``--dataset-period``)."""
    model_period: float = 30.0
    """Seconds between checks that each Model's file is on this node (``--model-period``)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lc", description="Sedna-py Local Controller")
    p.add_argument("--gm-address", help="GM edge hub host:port (env GM_ADDRESS)")
    p.add_argument("--node", help="node name (env NODE_NAME)")
    p.add_argument("--bootstrap-token", help="token to join the GM with (env LC_BOOTSTRAP_TOKEN)")
    p.add_argument("--bootstrap-token-file", help="file holding it (env LC_BOOTSTRAP_TOKEN_FILE)")
    p.add_argument("--token", help="pre-shared hub token (env LC_HUB_TOKEN)")
    p.add_argument("--token-file", help="file holding the pre-shared hub token (env LC_HUB_TOKEN_FILE)")
    p.add_argument("--state-dir", help="state directory (env LC_STATE_DIR; default ./lc-state)")
    p.add_argument("--bind", help="worker API host:port (env LC_BIND; default 127.0.0.1:9100)")
    p.add_argument("--admin-token", "--worker-token", dest="admin_token",
                   help="the LC's operator token (env LC_ADMIN_TOKEN or LC_WORKER_TOKEN; default: "
                        "<state-dir>/admin-token)")
    p.add_argument("--allow-unauthenticated-workers", action="store_true", default=None,
                   help="accept worker reports without a credential (env LC_ALLOW_UNAUTHENTICATED_WORKERS=1)")
    p.add_argument("--tls-ca", default="", help="CA bundle to verify the GM (enables TLS)")
    p.add_argument("--tls-cert", default="", help="client certificate for mTLS")
    p.add_argument("--tls-key", default="", help="client key for mTLS")
    p.add_argument("--tls-server-name", default="", help="expected name in the GM certificate")
    p.add_argument("--api-tls-cert", default="", help="serve the worker API over HTTPS with this cert")
    p.add_argument("--api-tls-key", default="", help="key of --api-tls-cert")
    p.add_argument("--dataset-period", help="seconds between dataset counts (env LC_DATASET_PERIOD; default 60)")
    p.add_argument("--model-period", help="seconds between model file checks (env LC_MODEL_PERIOD; default 30)")
    p.add_argument("--ping-interval", help="ping the hub after this many seconds without traffic both ways "
                   "(env LC_PING_INTERVAL; default 5)")
    p.add_argument("--ack-timeout", help="seconds before an unacked report is resent (default 10)")
    p.add_argument("--backoff-max", help="longest reconnect delay, seconds (env LC_BACKOFF_MAX; default 15)")
    return p


def _host_port(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}={value!r} is not host:port (for example 127.0.0.1:9100)")
    return host, int(port)


def _positive(value: str | None, name: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise SettingsError(f"{name}={value!r} is not a positive number of seconds")
    return number


def _secret(value: str, path: str, flag: str) -> str:
    """``value``, else the stripped content of ``path`` ('' when neither is given)."""
    if value or not path:
        return value
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise SettingsError(f"{flag}={path!r} cannot be read: {exc.strerror}") from None


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name}={value!r} is not a boolean (use 1 or 0)")


def from_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> LCSettings:
    """Build :class:`LCSettings` from flags and ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    args = _parser().parse_args(argv)
    gm_address = args.gm_address or env.get("GM_ADDRESS", "")
    if not gm_address:
        raise SettingsError("--gm-address (or GM_ADDRESS) is required, as host:port of the GM edge hub")
    _host_port(gm_address, "--gm-address")
    node = args.node or env.get("NODE_NAME", "")
    if not node:
        raise SettingsError("--node (or NODE_NAME) is required: the name the GM knows this node by")
    token = _secret(args.token or env.get("LC_HUB_TOKEN", ""), args.token_file or env.get("LC_HUB_TOKEN_FILE", ""),
                    "--token-file")
    bootstrap = _secret(args.bootstrap_token or env.get("LC_BOOTSTRAP_TOKEN", ""),
                        args.bootstrap_token_file or env.get("LC_BOOTSTRAP_TOKEN_FILE", ""), "--bootstrap-token-file")
    state_dir = Path(args.state_dir or env.get("LC_STATE_DIR", "lc-state"))
    if not token and not bootstrap and not (state_dir / "node-credential.json").exists():
        raise SettingsError(f"no way to authenticate to the GM: {state_dir / 'node-credential.json'} does not exist "
                            "yet, so give --bootstrap-token (or LC_BOOTSTRAP_TOKEN[_FILE]) to join, or a pre-shared "
                            "--token (or LC_HUB_TOKEN[_FILE])")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SettingsError("--tls-cert and --tls-key go together (mutual TLS needs both)")
    if bool(args.api_tls_cert) != bool(args.api_tls_key):
        raise SettingsError("--api-tls-cert and --api-tls-key go together")
    host, port = _host_port(args.bind or env.get("LC_BIND", "127.0.0.1:9100"), "--bind")
    hub = HubSettings(
        gm_address=gm_address, node=node, token=token, bootstrap_token=bootstrap, tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key, tls_server_name=args.tls_server_name,
        ping_interval=_positive(args.ping_interval or env.get("LC_PING_INTERVAL"), "--ping-interval", 5.0),
        ack_timeout=_positive(args.ack_timeout, "--ack-timeout", 10.0),
        backoff_max=_positive(args.backoff_max or env.get("LC_BACKOFF_MAX"), "--backoff-max", 15.0),
    )
    allow = args.allow_unauthenticated_workers
    if allow is None:
        allow = _flag(env.get("LC_ALLOW_UNAUTHENTICATED_WORKERS", ""), "LC_ALLOW_UNAUTHENTICATED_WORKERS")
    api = APISettings(host=host, port=port,
                      admin_token=args.admin_token or env.get("LC_ADMIN_TOKEN") or env.get("LC_WORKER_TOKEN", ""),
                      allow_unauthenticated_workers=allow, tls_cert=args.api_tls_cert, tls_key=args.api_tls_key)
    return LCSettings(
        hub=hub, api=api, state_dir=state_dir,
        dataset_period=_positive(args.dataset_period or env.get("LC_DATASET_PERIOD"), "--dataset-period", 60.0),
        model_period=_positive(args.model_period or env.get("LC_MODEL_PERIOD"), "--model-period", 30.0),
    )
