"""Test doubles for MQTT code: a real mosquitto on 127.0.0.1 and a deterministic model.

STYLE §2.9: seams ship with fakes that are public API. :class:`Mosquitto` starts the
mosquitto binary with a generated config (``listener PORT 127.0.0.1``, anonymous or a
password file, TLS with :mod:`.certs` files when asked, persistence in a given directory),
and can be stopped and restarted on the same port with its persisted sessions: what the
broker-restart tests and ``bench/mqtt.py`` need. :func:`argmax_infer` is a numpy stand-in for a joint inference.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sedna.common.outcome import JointOutcome
from sedna.service.mqtt.certs import TlsFiles

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or ``None`` when it is not installed."""
    for path in MOSQUITTO_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("mosquitto")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def password_line(username: str, password: str) -> str:
    """A mosquitto password-file line (``$6$``: salted SHA-512, which mosquitto 2 still reads)."""
    salt = os.urandom(12)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return f"{username}:$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


class Mosquitto:
    """A mosquitto process on ``127.0.0.1:port`` whose config and persistence live in ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None, users: dict[str, str] | None = None,
                 binary: str | None = None, persistence: bool = True, tls: TlsFiles | None = None) -> None:
        found = binary or find_mosquitto()
        if found is None:
            raise FileNotFoundError("mosquitto binary not found (install the 'mosquitto' package)")
        self.binary = found
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.users = users or {}
        self.persistence = persistence
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self._write_config()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        lines = [f"listener {self.port} 127.0.0.1"]
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.cert}", f"keyfile {self.tls.key}"]
        lines += [f"persistence {str(self.persistence).lower()}",
                  f"persistence_location {self.workdir}/", "autosave_interval 1",
                  "set_tcp_nodelay true", "max_queued_messages 100000", "max_inflight_messages 0",
                  f"user {getpass.getuser()}",  # as root, mosquitto would switch to 'mosquitto' and lose the tmp dir
                  "log_type error", "log_type warning", "log_type notice", "log_dest stderr"]
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("".join(password_line(u, p) + "\n" for u, p in self.users.items()))
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        handle = self.log.open("ab")
        try:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=handle, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            handle.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on {self.address} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), SIGKILL after ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self) -> Mosquitto:
        """Stop and start again on the same port, keeping the persisted sessions and messages."""
        self.stop()
        return self.start()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def argmax_infer(hard_threshold: float = 0.0) -> Callable[[np.ndarray], JointOutcome]:
    """A deterministic fake joint inference: class = argmax of the input row.

    Rows whose top value is below ``hard_threshold`` are hard examples computed "in the
    cloud"; everything else is answered at the edge.
    """

    def infer(tensor: np.ndarray) -> JointOutcome:
        flat = np.asarray(tensor, dtype=np.float64).reshape(len(tensor) if tensor.ndim > 1 else 1, -1)
        labels = flat.argmax(axis=1)
        hard = bool(flat.max() < hard_threshold)
        return JointOutcome(is_hard_example=hard, result=labels, edge_result=labels,
                            cloud_result=labels if hard else None, computed_at="cloud" if hard else "edge",
                            example_id="ex-" + str(int(labels[0])) if hard else None)

    return infer
