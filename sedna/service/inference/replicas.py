"""Serving across cores: several copies of one inference server process on the same ports.

Each replica is a whole :class:`~.server.InferenceServer` (its own model session, batcher,
event loops and GIL) bound with ``SO_REUSEPORT``, so the kernel spreads incoming connections
over the replicas and a machine with N cores runs N front ends and N batches at once.
Measured against the alternative of several front-end processes feeding one batcher through
shared memory (``bench.joint_inference``, ``serving_vs_ort_limit``): one Python process spent
most of a core on gRPC and protobuf and left the model a fraction of the other, and a shared
batcher would still run one batch at a time on one core; replicas lose some batch size (each
sees only its connections) and use one model copy per replica in memory, and in exchange
need no cross-process queue at all. Clients with one long-lived channel (the edge's
:class:`~sedna.core.joint_inference.cloud.CloudModel`) stay on one replica; many clients spread.

:class:`ReplicaSet` is the supervisor: it picks the ports (0 means free ones, held reserved
until every replica listens), starts ``count`` copies of a command with ``SEDNA_REPLICA`` set,
waits until each says it is ready, starts a replica again when one dies, and stops them all
on :meth:`stop`. Replicas count their metrics into one ``PROMETHEUS_MULTIPROC_DIR``, so
``/metrics`` on any of them reports the sum (:mod:`._metrics`).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

from sedna.common.log import get_logger

LOG = get_logger(__name__)

REPLICA_ENV = "SEDNA_REPLICA"
"""Set to the replica's index in every replica's environment."""
READY_FD_ENV = "SEDNA_REPLICA_READY_FD"
"""The file descriptor a replica writes one line to once it listens (see :func:`signal_ready`)."""
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess directory, shared by the replicas of one set."""


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_count(value: str, name: str = "SERVING_REPLICAS") -> int:
    """A replica count from configuration: a positive integer, or ``auto`` for one per usable core."""
    text = (value or "").strip().lower()
    if text in ("", "1"):
        return 1
    if text == "auto":
        return usable_cores()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise ValueError(f"{name}={value!r} must be a positive integer or 'auto'")


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port) with SO_REUSEPORT that does not listen.

    It holds the port for the replicas (who bind it too) without taking any connection.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def signal_ready(environ: Mapping[str, str] | None = None) -> None:
    """Tell the supervisor this replica listens (a no-op outside a :class:`ReplicaSet`)."""
    env = os.environ if environ is None else environ
    fd = env.get(READY_FD_ENV, "")
    if fd.isdigit():
        try:
            os.write(int(fd), f"{env.get(REPLICA_ENV, '')}\n".encode())
            os.close(int(fd))
        except OSError:
            pass


class ReplicaSet:
    """Run ``count`` copies of ``command`` sharing the ports the supervisor reserved.

    Parameters
    ----------
    command
        The replica's argv (e.g. ``[sys.executable, "-m", "workers.joint_inference.cloud"]``).
    count
        How many replicas.
    env
        Their environment; :data:`REPLICA_ENV`, :data:`READY_FD_ENV` and :data:`METRICS_DIR_ENV` are added.
    host, ports
        Where the replicas listen: ``{ENV_NAME: port}``; a port of 0 is replaced by a free port
        and every replica gets the chosen ports in those variables.
    """

    def __init__(self, command: Sequence[str], count: int, env: Mapping[str, str], host: str,
                 ports: Mapping[str, int]) -> None:
        if count < 1:
            raise ValueError(f"count={count!r} must be at least 1")
        self.command = list(command)
        self.count = count
        self.host = host
        self._env = dict(env)
        self._wanted = dict(ports)
        self.ports: dict[str, int] = {}
        self._reserved: list[socket.socket] = []
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self._metrics_dir = ""
        self._stopping = threading.Event()

    def start(self, timeout: float = 120.0) -> ReplicaSet:
        """Reserve the ports, start every replica and wait until all of them listen."""
        self._metrics_dir = tempfile.mkdtemp(prefix="sedna-replica-metrics-")
        try:
            for name, port in self._wanted.items():
                sock = reserve_port(self.host, port)
                self._reserved.append(sock)
                self.ports[name] = int(sock.getsockname()[1])
            deadline = time.monotonic() + timeout
            for index in range(self.count):
                self._spawn(index, deadline)
        except BaseException:
            self.stop()
            raise
        LOG.info("%d serving replicas on %s (%s)", self.count, self.host,
                 ", ".join(f"{k}={v}" for k, v in self.ports.items()))
        return self

    def _spawn(self, index: int, deadline: float) -> None:
        read, write = os.pipe()
        env = {**self._env, **{name: str(port) for name, port in self.ports.items()},
               REPLICA_ENV: str(index), READY_FD_ENV: str(write), METRICS_DIR_ENV: self._metrics_dir}
        try:
            proc = self._procs[index] = subprocess.Popen(self.command, env=env, pass_fds=(write,))
        finally:
            os.close(write)
        try:
            while True:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([read], [], [], max(0.0, min(left, 0.5)))
                if ready and os.read(read, 64):
                    return
                if ready or proc.poll() is not None:  # end of file: the replica is gone
                    raise RuntimeError(f"serving replica {index} ({' '.join(self.command)}) exited with "
                                       f"code {proc.wait()} before it listened")
                if left <= 0:
                    proc.kill()
                    proc.wait()
                    raise TimeoutError(f"serving replica {index} did not listen within the start timeout")
        finally:
            os.close(read)

    def pids(self) -> list[int]:
        """The process ids of the replicas that were started (running or not)."""
        return [proc.pid for proc in self._procs if proc is not None]

    def exit_codes(self) -> list[int | None]:
        """Each replica's exit code (None while it runs or before it was started)."""
        return [None if proc is None else proc.poll() for proc in self._procs]

    def watch(self, interval: float = 0.5, restart_timeout: float = 120.0) -> None:
        """Block until :meth:`stop`, starting again any replica that dies (stops all if one cannot restart)."""
        while not self._stopping.wait(interval):
            for index, code in enumerate(self.exit_codes()):
                if code is None or self._stopping.is_set():
                    continue
                LOG.warning("serving replica %d exited with code %s; starting it again", index, code)
                try:
                    self._spawn(index, time.monotonic() + restart_timeout)
                except (RuntimeError, TimeoutError, OSError) as exc:
                    if self._stopping.is_set():  # stop() ended it while it started
                        return
                    LOG.error("serving replica %d cannot start again (%s); stopping every replica", index, exc)
                    self.stop()
                    raise

    def serve_forever(self) -> None:
        """Watch the replicas until SIGTERM or SIGINT, then stop them."""
        previous = {sig: signal.signal(sig, lambda *_: self._stopping.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def stop(self, grace: float = 10.0) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after ``grace`` s) and release the ports."""
        self._stopping.set()
        procs = [proc for proc in self._procs if proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sock in self._reserved:
            sock.close()
        self._reserved.clear()
        if self._metrics_dir:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            self._metrics_dir = ""

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
