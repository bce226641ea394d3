"""A simulated device fleet: plays the digits test split against a gateway and scores it.

``sedna device simulate --service S`` (and :func:`simulate` for programs) publishes each
test image as a binary-framed request with its own correlation id, collects the answers
on a response topic of its own (MQTT 5; with a 3.1.1 broker, the device's result topic),
and reports accuracy, the share of hard examples answered by the cloud, errors, and the
round-trip p50/p99. Requests are paced at ``rate`` per second, or, with no rate, kept at
``window`` in flight. :func:`digits_test_split` is the split the joint inference example
trains against, so both agree on the data.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO

import numpy as np

from sedna.service.mqtt import connection
from sedna.service.mqtt.codec import encode_frame
from sedna.service.mqtt.settings import MqttSettings, Topics


def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """The scikit-learn digits test split: ``X`` float32 ``(540, 64)`` scaled to [0, 1], ``y`` int64."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:  # pragma: no cover - scikit-learn is a dev dependency
        raise ImportError("the device simulator needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    _, x_test, _, y_test = train_test_split(x, digits.target, test_size=0.3, random_state=0, stratify=digits.target)
    return x_test, y_test.astype(np.int64)


def predicted_label(result: Any) -> int | None:
    """The class in a result: a label (``[3]``) or scores (``[[0.1, 0.9, ...]]``, argmax taken)."""
    try:
        array = np.asarray(result)
    except (TypeError, ValueError):
        return None
    if array.size == 0 or array.dtype.kind not in "iufb":
        return None
    if array.dtype.kind == "f" and array.ndim >= 1 and array.shape[-1] > 1:
        return int(np.asarray(array).reshape(-1, array.shape[-1])[0].argmax())
    return int(array.reshape(-1)[0])


class _Run:
    """The state of one simulation: what was sent when, what came back.

    With a ``window`` (no rate) it is driven by the answers: each answer, handled on
    paho's network thread, sends the next request, so no second thread is woken per
    message; with a rate, the caller's thread paces the sends.
    """

    def __init__(self, client: Any, topics: Topics, device: str, protocol: str, reply_topic: str, x: np.ndarray,
                 n: int, window: int, qos: int) -> None:
        self.client, self.protocol, self.reply_topic, self.x = client, protocol, reply_topic, x
        self.request_topic = topics.request(device)
        self.device, self.n, self.window, self.qos = device, n, max(1, window), qos
        self.sent: dict[str, float] = {}
        self.rtts: list[float] = []
        self.answers: dict[str, dict[str, Any]] = {}
        self.errors = 0
        self.last_answer = time.monotonic()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.windowed = True

    def send(self, paced: bool = False) -> bool:
        """Send the next request unless all are sent or (unless ``paced``) the window is full."""
        with self.lock:
            i = len(self.sent)
            if i >= self.n or (not paced and i - len(self.answers) >= self.window):
                return False
            rid = f"{self.device}-{i}"
            self.sent[rid] = time.perf_counter()
        props = connection.publish_properties(self.protocol, response_topic=self.reply_topic, correlation=rid.encode())
        self.client.publish(self.request_topic, encode_frame(self.x[i % len(self.x)][None, :], rid), qos=self.qos,
                            properties=props)
        return True

    def collect(self, payload: bytes) -> None:
        """Record one answer (on the network thread) and, in window mode, send the next request."""
        arrived = time.perf_counter()
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return
        rid = str(body.get("id")) if isinstance(body, dict) else None
        with self.lock:
            if rid not in self.sent or rid in self.answers:
                return
            self.answers[rid] = body
            self.errors += not body.get("ok")
            self.rtts.append((arrived - self.sent[rid]) * 1000.0)
            self.last_answer = time.monotonic()
            finished = len(self.answers) >= self.n
        if finished:
            self.done.set()
        elif self.windowed:
            self.send()


class _Progress:
    def __init__(self, total: int, stream: TextIO, interval: float = 2.0) -> None:
        self.total, self.stream, self.interval = total, stream, interval
        self.tty = stream.isatty()
        self._last = 0.0

    def show(self, sent: int, answered: int, errors: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.1 if self.tty else self.interval):
            return
        self._last = now
        line = f"sent {sent}/{self.total}  answered {answered}  errors {errors}"
        if self.tty:
            self.stream.write("\r" + line.ljust(60) + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def simulate(service: str, namespace: str = "default", settings: MqttSettings | None = None, *,
             count: int | None = None, rate: float = 0.0, window: int = 32, qos: int = 1, timeout: float = 30.0,
             device_id: str | None = None, progress: TextIO | None = None) -> dict[str, Any]:
    """Send ``count`` digits (default: all 540; more cycle through the split again) and return a summary dict.

    Keys: ``sent``, ``answered``, ``ok``, ``errors`` (count), ``error_codes``, ``unanswered``,
    ``accuracy`` (correct / ok answers), ``offload_share`` (answers computed in the cloud /
    ok answers), ``hard_examples``, ``rtt_p50_ms``, ``rtt_p99_ms``, ``duration_s``,
    ``requests_per_s``, ``protocol``. ``progress`` (e.g. ``sys.stderr``) gets a progress line.
    The run ends when every request is answered or no answer came for ``timeout`` seconds.
    """
    settings = settings or MqttSettings()
    topics = Topics(namespace, service)
    x, y = digits_test_split()
    n = len(x) if count is None else max(0, count)
    device = device_id or f"sim-{os.getpid()}-{os.urandom(3).hex()}"
    protocol = settings.protocol
    failures: list[str] = []
    if protocol == "auto":
        protocol = connection.detect_protocol(settings, failures=failures) or ""
        if not protocol:
            raise ConnectionError(failures[-1] if failures else
                                  f"cannot reach the MQTT broker at {settings.host}:{settings.port}")
    reply_topic = topics.response(device) if protocol == "5" else topics.result(device)
    connected = threading.Event()
    client = connection.new_client(settings, device, protocol, persistent=False)
    run = _Run(client, topics, device, protocol, reply_topic, x, n, window, qos)
    run.windowed = rate <= 0

    def on_connect(c: Any, u: Any, f: Any, reason_code: Any, p: Any) -> None:
        if connection.reason_value(reason_code) == 0:
            c.subscribe(reply_topic, qos=qos)
        else:  # refused (credentials, ACL): no point in waiting
            failures.append(connection.describe_refusal(reason_code, settings))
            connected.set()

    def on_connect_fail(c: Any, u: Any) -> None:  # called while paho handles the OSError: exc_info names it
        failures.append(connection.describe_failure(sys.exc_info()[1], settings))
        connected.set()

    client.on_connect = on_connect
    client.on_connect_fail = on_connect_fail
    client.on_subscribe = lambda c, u, mid, codes, p: connected.set()
    client.on_message = lambda c, u, message: run.collect(message.payload)
    connection.connect(client, settings, protocol, persistent=False)
    bar = _Progress(n, progress) if progress is not None else None
    try:
        if not connected.wait(min(timeout, settings.connect_timeout)) or failures:
            raise ConnectionError(failures[-1] if failures else
                                  f"no MQTT session with {settings.host}:{settings.port} within "
                                  f"{settings.connect_timeout}s (check --broker and credentials)")
        started = time.monotonic()
        run.last_answer = started
        if n == 0:
            run.done.set()
        elif rate > 0:
            _paced(run, started, rate, bar)
        else:
            while run.send():  # the first window; every answer then sends the next request
                pass
        while not run.done.wait(0.2) and time.monotonic() - run.last_answer < timeout:
            if bar:
                bar.show(len(run.sent), len(run.answers), run.errors)
        duration = time.monotonic() - started
    finally:
        client.disconnect()
        client.loop_stop()
    if bar:
        bar.show(len(run.sent), len(run.answers), run.errors, final=True)
    return _summary(run, y, n, duration)


def _paced(run: _Run, started: float, rate: float, bar: _Progress | None) -> None:
    for i in range(run.n):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        run.send(paced=True)
        if bar:
            bar.show(i + 1, len(run.answers), run.errors)


def _summary(run: _Run, y: np.ndarray, n: int, duration: float) -> dict[str, Any]:
    ok = correct = cloud = hard = 0
    codes: dict[str, int] = {}
    for rid, body in run.answers.items():
        if not body.get("ok"):
            code = str(body.get("code", "error"))
            codes[code] = codes.get(code, 0) + 1
            continue
        ok += 1
        index = int(rid.rsplit("-", 1)[1]) % len(y)
        correct += int(predicted_label(body.get("result")) == int(y[index]))
        hard += int(bool(body.get("hard_example")))
        cloud += int(bool(body.get("hard_example")) and body.get("computed_at") == "cloud")
    rtts = np.asarray(run.rtts, dtype=np.float64)
    return {"device": run.device, "protocol": run.protocol, "sent": len(run.sent), "answered": len(run.answers),
            "ok": ok, "errors": sum(codes.values()), "error_codes": codes, "unanswered": n - len(run.answers),
            "accuracy": correct / ok if ok else 0.0, "offload_share": cloud / ok if ok else 0.0,
            "hard_examples": hard, "rtt_p50_ms": float(np.percentile(rtts, 50)) if rtts.size else None,
            "rtt_p99_ms": float(np.percentile(rtts, 99)) if rtts.size else None, "duration_s": duration,
            "requests_per_s": len(run.answers) / duration if duration > 0 else 0.0}


def format_summary(summary: dict[str, Any]) -> str:
    """The human-readable report ``sedna device simulate`` prints."""
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} ms"

    codes = ", ".join(f"{k}={v}" for k, v in sorted(summary["error_codes"].items())) or "none"
    return "\n".join([
        f"answered      {summary['answered']}/{summary['sent']} ({summary['unanswered']} unanswered)",
        f"accuracy      {summary['accuracy']:.4f}",
        f"offload share {summary['offload_share']:.4f} (hard examples computed in the cloud / answers)",
        f"errors        {summary['errors']} ({codes})",
        f"round trip    p50 {ms(summary['rtt_p50_ms'])}, p99 {ms(summary['rtt_p99_ms'])}",
        f"throughput    {summary['requests_per_s']:.1f} requests/s over {summary['duration_s']:.2f} s",
    ])


if __name__ == "__main__":  # pragma: no cover - convenience: python -m sedna.service.mqtt.simulator SERVICE
    print(format_summary(simulate(sys.argv[1], progress=sys.stderr)))
