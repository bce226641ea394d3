"""The cloud inference server: OIP v2 over REST and gRPC, with dynamic batching.

One :class:`InferenceServer` serves a fixed set of :class:`~sedna.backend.tensors.ServedModel` s
on two listeners that share one :class:`~._repository.ModelRepository` (so batching
and metrics see both protocols): uvicorn runs the FastAPI app (``_rest``) on its own
event-loop thread, grpc.aio runs ``_grpc``'s servicer on another. :meth:`start`
returns once both listen; ports may be 0 (the OS picks; read :attr:`rest_port` and
:attr:`grpc_port`) or None (that listener is off).
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sedna.backend.tensors import ServedModel
from sedna.common.log import get_logger

from ._config import BatchingConfig, TLSConfig
from ._metrics import ServerMetrics
from ._repository import ModelRepository

LOG = get_logger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_TENSOR_ELEMENTS = 1 << 24


class InferenceServer:
    """Serve ``models`` over OIP v2 REST (``rest_port``) and gRPC (``grpc_port``).

    Parameters
    ----------
    models
        What to serve; names must be unique. Sedna's ``/{service}/predict`` uses the
        model named after the first of ``sedna_service_name`` that names one, else the first model.
    host
        Address both listeners bind (loopback by default).
    rest_port, grpc_port
        Ports to listen on; 0 picks a free port, None disables that protocol.
    token
        When set, every request except the liveness/readiness checks needs
        ``Authorization: Bearer <token>`` (gRPC: ``authorization`` metadata).
    tls
        Certificate and key for HTTPS and gRPC over TLS.
    batching
        Dynamic batching of models with ``max_batch_size`` > 0; None runs every request alone.
    sedna_service_name
        The ``{service}`` path segment(s) of Sedna's API: a name or a list of names (a Sedna
        edge posts to ``/{JOB_NAME}/predict``, this project's to ``/{SERVICE_NAME}/predict``);
        None accepts any.
    max_request_bytes
        Largest request body / gRPC message accepted (413 / RESOURCE_EXHAUSTED beyond).
    grpc_threads
        Most gRPC requests to models that do not batch running at once (batched models run
        on their batcher's threads).
    ready_checks
        Further conditions of readiness (e.g. an MQTT gateway's connection): the server is
        ready when it runs and every check returns True.
    max_tensor_elements
        Most tensor elements one REST request may carry (JSON numbers are read into typed
        buffers, never as Python objects); beyond it, 400.
    reuse_port
        Bind both listeners with ``SO_REUSEPORT`` so that several server processes share the
        ports and the kernel spreads connections over them (:mod:`.replicas`).
    """

    def __init__(self, models: Sequence[ServedModel], *, host: str = "127.0.0.1", rest_port: int | None = 0,
                 grpc_port: int | None = 0, token: str | None = None, tls: TLSConfig | None = None,
                 batching: BatchingConfig | None = None, sedna_service_name: str | Sequence[str] | None = None,
                 max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, grpc_threads: int = 64,
                 ready_checks: Sequence[Callable[[], bool]] = (),
                 max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS, reuse_port: bool = False) -> None:
        for field_name, port in (("rest_port", rest_port), ("grpc_port", grpc_port)):
            if port is not None and not (isinstance(port, int) and 0 <= port <= 65535):
                raise ValueError(f"{field_name}={port!r} must be an integer in 0..65535 or None")
        if rest_port is None and grpc_port is None:
            raise ValueError("rest_port and grpc_port are both None: enable at least one protocol")
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes={max_request_bytes!r} must be positive")
        self.host = host
        self.token = token or None
        self.tls = tls
        self.sedna_service_name = sedna_service_name
        self.max_request_bytes = max_request_bytes
        self.max_tensor_elements = max_tensor_elements
        self._ready_checks = list(ready_checks)
        self.metrics = ServerMetrics()
        self.repository = ModelRepository(models, batching, self.metrics)
        self._want_rest, self._want_grpc = rest_port, grpc_port
        self._grpc_threads = grpc_threads
        self.reuse_port = reuse_port
        self._rest_port: int | None = None
        self._grpc_port: int | None = None
        self._uvicorn: Any = None
        self._rest_thread: threading.Thread | None = None
        self._grpc: Any = None
        self._ready = False
        self._stopped = threading.Event()

    @property
    def rest_port(self) -> int | None:
        """The bound REST port (None before :meth:`start` or when REST is off)."""
        return self._rest_port

    @property
    def grpc_port(self) -> int | None:
        """The bound gRPC port (None before :meth:`start` or when gRPC is off)."""
        return self._grpc_port

    def is_ready(self) -> bool:
        """Whether the server accepts inference requests (and every ``ready_checks`` passes)."""
        return self._ready and all(check() for check in self._ready_checks)

    def start(self, timeout: float = 30.0) -> InferenceServer:
        """Start both listeners in background threads; returns once they accept connections."""
        if self._grpc is not None or self._uvicorn is not None:
            raise RuntimeError("InferenceServer.start() called twice; call stop() first")
        self.repository.open()
        try:
            if self._want_grpc is not None:
                self._start_grpc()
            if self._want_rest is not None:
                self._start_rest(timeout)
        except BaseException:
            self.stop()
            raise
        self._ready = True
        self._stopped.clear()
        LOG.info("inference server on %s: rest=%s grpc=%s models=%s", self.host, self._rest_port,
                 self._grpc_port, ", ".join(self.repository.models))
        return self

    def _start_grpc(self) -> None:
        from ._grpc import GrpcFrontEnd

        self._grpc = GrpcFrontEnd(
            self.repository, host=self.host, port=self._want_grpc or 0, token=self.token, tls=self.tls,
            max_request_bytes=self.max_request_bytes, is_ready=self.is_ready, threads=self._grpc_threads,
            reuse_port=self.reuse_port,
        )
        self._grpc_port = self._grpc.start()

    def _start_rest(self, timeout: float) -> None:
        import uvicorn

        from ._rest import build_app

        app = build_app(self.repository, token=self.token, max_request_bytes=self.max_request_bytes,
                        sedna_service_name=self.sedna_service_name, is_ready=self.is_ready,
                        max_tensor_elements=self.max_tensor_elements)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
        # and without it Nagle + delayed ACK add ~40 ms to every response.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self._want_rest or 0))
        self._rest_port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ws="none",
            ssl_certfile=self.tls.cert_file if self.tls else None, ssl_keyfile=self.tls.key_file if self.tls else None,
            timeout_graceful_shutdown=5, limit_concurrency=None, h11_max_incomplete_event_size=None,
        )
        self._uvicorn = uvicorn.Server(config)
        self._rest_thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]},
                                             name="oip-rest", daemon=True)
        self._rest_thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._rest_thread.is_alive():
                raise RuntimeError(f"REST server failed to start on {self.host}:{self._rest_port}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"REST server did not start within {timeout}s")
            time.sleep(0.01)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting requests, let running ones finish (up to ``grace`` s), stop batchers."""
        self._ready = False
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._grpc is not None:
            self._grpc.stop(grace)
            self._grpc = None
        if self._rest_thread is not None:
            self._rest_thread.join(grace + 1)
            self._rest_thread = None
            self._uvicorn = None
        self.repository.close()
        self._stopped.set()

    def serve_forever(self) -> None:
        """Start (if needed) and block until SIGTERM or SIGINT, then stop gracefully."""
        stop = threading.Event()
        # handlers first: a SIGTERM that arrives once the ports answer must already stop gracefully
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if not self._ready:
                self.start()
            while not stop.wait(0.5) and not self._stopped.is_set():
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def __enter__(self) -> InferenceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
