"""An embedded MQTT broker for the local backend: amqtt on a background thread.

``sedna local up`` starts one so devices and edge workers can talk without
installing mosquitto (the CLI passes ``--mqtt-broker HOST:PORT`` to use a real one
instead). amqtt is a pure-Python asyncio broker that speaks **MQTT 3.1.1 only**: the
gateway's ``protocol="auto"`` falls back to 3.1.1 against it, so results go to
``.../result/{device}`` rather than to an MQTT 5 response topic. For production,
and for the throughput figures in ``bench/mqtt.py``, use mosquitto.

It binds 127.0.0.1 by default. Given a password file (``--password-file``, ``USER:PASSWORD``
lines, :mod:`.broker_auth`) it accepts only clients that present one of those username/password
pairs, which is how ``sedna local up`` runs it; without one it allows anonymous clients. It keeps
sessions and retained messages in memory only. Run it on its own with
``python -m sedna.service.mqtt.broker --port 1883 [--password-file FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from sedna.common.log import configure, get_logger

log = get_logger(__name__)


class EmbeddedBroker:
    """An amqtt broker serving ``host:port`` from a daemon thread; ``port=0`` picks a free port (see ``.port``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, max_connections: int = -1,
                 start_timeout: float = 10.0, password_file: str = "") -> None:
        self.host = host
        self.port = port
        self.password_file = password_file
        """``USER:PASSWORD`` lines clients must match ('' allows anonymous clients)."""
        self._max_connections = max_connections
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        """``host:port``, the form ``MQTT_BROKER`` and ``--mqtt-broker`` take."""
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start serving; returns once the listener accepts connections (``RuntimeError`` if it cannot bind)."""
        if self._thread is not None:
            raise RuntimeError("EmbeddedBroker.start() called twice")
        self._thread = threading.Thread(target=self._run, name=f"mqtt-broker-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError(f"embedded MQTT broker did not start on {self.address} within {self._start_timeout}s")
        if self._error is not None:
            self._thread.join(1.0)
            raise RuntimeError(f"embedded MQTT broker cannot serve {self.address}: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down and join its thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stopped = asyncio.Event()
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() through _error
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        plugins: dict[str, Any] = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        if self.password_file:
            from sedna.service.mqtt.broker_auth import PLUGIN, read_password_file

            read_password_file(self.password_file)  # a clear error here rather than a refusal of every client
            plugins = {PLUGIN: {"password_file": self.password_file}}
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                                      "max_connections": self._max_connections}},
            "plugins": plugins,
        }
        self._stopped = asyncio.Event()
        self._broker = Broker(config, loop=asyncio.get_running_loop())
        await self._broker.start()
        server = self._broker._servers["default"].instance  # amqtt keeps no public handle on its listener
        self.port = int(server.sockets[0].getsockname()[1])
        log.info("embedded MQTT broker (MQTT 3.1.1) listening on %s (%s)", self.address,
                 "username and password required" if self.password_file else "anonymous clients allowed")
        self._ready.set()
        await self._stopped.wait()

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self._broker.shutdown()
        self._stopped.set()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sedna.service.mqtt.broker [--host H] [--port P]``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m sedna.service.mqtt.broker", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="TCP port (default 1883; 0 picks a free one)")
    parser.add_argument("--password-file", default="",
                        help="USER:PASSWORD lines: only those clients may connect (default: anonymous allowed)")
    args = parser.parse_args(argv)
    configure()
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)  # amqtt's state machine logs every transition
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        broker = EmbeddedBroker(args.host, args.port, password_file=args.password_file).start()
    except (RuntimeError, TimeoutError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"MQTT broker listening on {broker.address}", flush=True)
    done.wait()
    broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
