"""The credentials ``sedna local up`` keeps in its state dir: generated once, kept across restarts.

Every file is written with mode 0600 (the state dir itself is 0700 when ``up`` created it):

- ``token``: the GM API's bearer token (CLI, dashboard, ``/metrics``);
- ``worker-tokens``: ``NODE=TOKEN`` lines, each LC's operator token (``LC_WORKER_TOKEN``);
- ``bootstrap-tokens``: the single-use, short-lived tokens an LC joins the GM with when its state dir
  holds no node credential yet (the GM re-reads the file; ``docs/identity.md``);
- ``worker-secrets``: ``NAME=VALUE`` lines the GM's local runtime adds to every Pod's environment
  (a template's own value wins): ``BIG_MODEL_TOKEN`` (the cloud inference server requires it, edge
  workers present it), ``EDGE_TOKEN`` (the edge inference servers require it; clients such as the
  examples read it here) and, with the embedded broker, ``MQTT_USERNAME`` / ``MQTT_PASSWORD``;
- ``mqtt-passwords``: the embedded broker's ``USER:PASSWORD`` lines (one for the workers, one for
  devices: ``sedna device simulate`` reads :func:`device_credentials`).

A token once written is never replaced by ``up`` or ``restart``: a restarted component finds the
same credentials its peers hold. Delete a file (with the cluster down) to rotate what it holds.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

WORKER_SECRETS = "worker-secrets"
MQTT_PASSWORDS = "mqtt-passwords"
WORKERS_MQTT_USER = "sedna-workers"
DEVICES_MQTT_USER = "sedna-devices"


def secret_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` with mode 0600 (also when it existed with another mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def read_pairs(path: Path, sep: str = "=") -> dict[str, str]:
    """``KEY<sep>VALUE`` lines of ``path`` ({} when it does not exist)."""
    pairs: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, found, value = line.partition(sep)
            if found and key.strip() and value.strip():
                pairs[key.strip()] = value.strip()
    return pairs


def keep_pairs(path: Path, keys: list[str], sep: str = "=") -> dict[str, str]:
    """The pairs of ``path``, a fresh random token for each of ``keys`` it lacks; written back (0600)."""
    pairs = read_pairs(path, sep)
    missing = [k for k in keys if k not in pairs]
    for key in missing:
        pairs[key] = secrets.token_urlsafe(32)
    if missing or not path.exists():
        secret_file(path, "".join(f"{k}{sep}{v}\n" for k, v in pairs.items()))
    return pairs


def ensure(state: Path, nodes: list[str], embedded_broker: bool) -> dict[str, dict[str, str]]:
    """Create what is missing of the state dir's credentials; return ``{file name: pairs}``."""
    if not (state / "token").exists():
        secret_file(state / "token", secrets.token_urlsafe(32) + "\n")
    (state / "node-tokens").unlink(missing_ok=True)  # pre-shared hub tokens of an older `up`: LCs join instead
    found = {"worker-tokens": keep_pairs(state / "worker-tokens", nodes)}
    mqtt = keep_pairs(state / MQTT_PASSWORDS, [WORKERS_MQTT_USER, DEVICES_MQTT_USER], ":") if embedded_broker else {}
    env = keep_pairs(state / WORKER_SECRETS, ["BIG_MODEL_TOKEN", "EDGE_TOKEN"])
    wanted = {"MQTT_USERNAME": WORKERS_MQTT_USER, "MQTT_PASSWORD": mqtt[WORKERS_MQTT_USER]} if mqtt else {}
    if {k: env.get(k) for k in ("MQTT_USERNAME", "MQTT_PASSWORD") if k in env or wanted} != wanted:
        # the embedded broker's identity, or none for an external broker (its credentials are the operator's)
        env = {**{k: v for k, v in env.items() if k not in ("MQTT_USERNAME", "MQTT_PASSWORD")}, **wanted}
        secret_file(state / WORKER_SECRETS, "".join(f"{k}={v}\n" for k, v in env.items()))
    found.update({WORKER_SECRETS: env, MQTT_PASSWORDS: mqtt})
    return found


def device_credentials(state: Path) -> tuple[str, str] | None:
    """The (username, password) devices use with the embedded broker of ``state``, if it has one."""
    password = read_pairs(state / MQTT_PASSWORDS, ":").get(DEVICES_MQTT_USER)
    return (DEVICES_MQTT_USER, password) if password else None


def edge_token(state: Path) -> str:
    """``EDGE_TOKEN``: what a client presents to the edge inference servers of ``state`` ('' if none)."""
    return read_pairs(state / WORKER_SECRETS).get("EDGE_TOKEN", "")


BOOTSTRAP_SECONDS = 600
"""How long a bootstrap token written by ``up`` can be used."""


def bootstrap_token(state: Path, node: str) -> str:
    """A fresh token ``node`` may join the GM with once within :data:`BOOTSTRAP_SECONDS`, added to
    ``state/bootstrap-tokens`` (expired lines dropped)."""
    now = int(time.time())
    path = state / "bootstrap-tokens"
    kept = []
    for line in path.read_text().splitlines() if path.exists() else []:
        expires = next((f[8:] for f in line.split() if f.startswith("expires=")), "")
        if expires.isdigit() and int(expires) > now:
            kept.append(line)
    token = secrets.token_urlsafe(32)
    kept.append(f"{token} expires={now + BOOTSTRAP_SECONDS} nodes={node} uses=1")
    secret_file(path, "".join(f"{line}\n" for line in kept))
    return token
