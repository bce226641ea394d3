"""Wire the Local Controller together and serve until SIGTERM / SIGINT.

Order matters for edge autonomy: the store opens first (objects from the last run are there
before the GM answers), then the managers and the worker API start, and the hub client dials
the GM in the background (joining first when the node holds no credential), so workers can
report while the GM is unreachable.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from lc.errors import LCError, SettingsError
from lc.settings import LCSettings, from_args
from sedna.common import log

LOG = logging.getLogger(__name__)


def admin_token(state_dir: Path) -> str:
    """Read ``<state_dir>/admin-token``, creating it (mode 0600) with a random token on first start."""
    path = state_dir / "admin-token"
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if not token:
            raise SettingsError(f"admin token file {str(path)!r} is empty; delete it to get a new token") from None
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    LOG.info("created the LC's operator token file %s", path)
    return token


def run(settings: LCSettings) -> None:
    """Run the LC in this thread until the HTTP server stops."""
    import uvicorn

    from lc import managers
    from lc.api import WorkerAuth, create_app
    from lc.credentials import CredentialStore
    from lc.hubclient import HubClient
    from lc.incremental.loop import IncrementalLoop
    from lc.lifelong.loop import LifelongLoop
    from lc.managers.dataset import DatasetManager
    from lc.managers.models import ModelManager
    from lc.store import Store

    token = settings.api.admin_token or admin_token(settings.state_dir)
    credentials = CredentialStore(settings.state_dir, settings.hub.node, settings.hub.token)
    store = Store(settings.state_dir / "lc.db")
    LOG.info("node %r: %d objects and %d queued reports loaded from %s", settings.hub.node,
             len(store.refs()), store.outbox_size(), store.path)
    checkers: list[DatasetManager | ModelManager] = []

    def wake() -> None:
        hub.wake()

    incremental = IncrementalLoop(store, wake)
    lifelong = LifelongLoop(store, wake)

    def on_change(key: object) -> None:
        for checker in checkers:
            if str(key).startswith(f"{checker.kind}/"):
                checker.poke()
        incremental.poke()
        lifelong.poke()

    hub = HubClient(settings.hub, store, credentials, on_change)
    datasets = DatasetManager(store, hub.wake, settings.dataset_period)
    models = ModelManager(store, hub.wake, settings.model_period)
    checkers += [datasets, models]
    handlers = managers.build(store, hub.wake)
    auth = WorkerAuth(token, credentials.worker_key, settings.api.allow_unauthenticated_workers)
    app = create_app(store, handlers, auth, lambda: hub.connected, node=settings.hub.node)
    api = settings.api
    config = uvicorn.Config(app, host=api.host, port=api.port, log_level="warning", access_log=False,
                            ssl_certfile=api.tls_cert or None, ssl_keyfile=api.tls_key or None)
    datasets.start()
    models.start()
    incremental.start()
    lifelong.start()
    hub.start()
    if settings.api.allow_unauthenticated_workers:
        LOG.warning("worker API accepts reports without a credential (--allow-unauthenticated-workers)")
    LOG.info("worker API on %s:%d; dialling GM %s", api.host, api.port, settings.hub.gm_address)
    try:
        uvicorn.Server(config).run()
    finally:
        hub.stop()
        incremental.stop()
        models.stop()
        lifelong.stop()
        datasets.stop()
        store.close()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of ``python -m lc`` (and the ``sedna-lc`` console script)."""
    log.configure(environ=environ)
    try:
        settings = from_args(argv, environ)
        run(settings)
    except LCError as exc:
        print(f"sedna-lc: {exc}", file=sys.stderr)
        return 2
    return 0
