"""``sedna get -w`` follows the API's HTTP watch: rows for the objects there, then one per change."""

from __future__ import annotations

import queue
import subprocess
import threading
import time

import pytest

from gm.cluster.interface import MODEL
from sedna.cli import _kinds, _watch
from sedna.cli._client import Client
from tests.cli.conftest import TOKEN, Api, model

pytestmark = pytest.mark.processes


class Lines:
    """The stdout lines of a running CLI, read in a thread so a test can wait for one with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self._queue = proc, queue.Queue[str]()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20.0) -> list[str]:
        """Every line read up to and including the first containing ``text``."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if text in line:
                return seen
        stderr = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise AssertionError(f"no line with {text!r} within {timeout}s; got {seen!r} {stderr}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._reader.join(10)  # it ends at EOF; then the pipes can be closed
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_watch_prints_the_listing_then_each_change_without_polling(api: Api) -> None:
    api.store.create(model("alpha"))
    lines = Lines(api.popen("get", "models", "-w", "--output-watch-events"))
    try:
        first = lines.wait_for("alpha")
        assert first[0].split() == ["EVENT", "NAME", "FORMAT", "URL", "AGE"]
        assert first[1].split()[:2] == ["ADDED", "alpha"]

        api.store.create(model("beta"))
        assert lines.wait_for("beta")[-1].split()[:2] == ["ADDED", "beta"]
        started = time.monotonic()
        api.store.update({**api.store.get(MODEL, "default", "alpha"), "metadata": {
            **api.store.get(MODEL, "default", "alpha")["metadata"], "labels": {"tier": "edge"}}})
        assert lines.wait_for("MODIFIED")[-1].split()[:2] == ["MODIFIED", "alpha"]
        assert time.monotonic() - started < 5.0  # pushed by the watch, not found by a slow poll
        api.store.delete(MODEL, "default", "beta")
        assert lines.wait_for("DELETED")[-1].split()[:2] == ["DELETED", "beta"]
    finally:
        lines.stop()


def test_watch_of_one_name_in_yaml_shows_only_that_object(api: Api) -> None:
    api.store.create(model("alpha"))
    api.store.create(model("beta"))
    lines = Lines(api.popen("get", "model/alpha", "-w", "-o", "name"))
    try:
        assert lines.wait_for("model/alpha") == ["model/alpha"]
        api.store.patch_status(MODEL, "default", "beta", {"phase": "x"})
        api.store.patch_status(MODEL, "default", "alpha", {"phase": "y"})
        assert lines.wait_for("model/alpha") == ["model/alpha"]  # beta's change printed nothing
    finally:
        lines.stop()


def test_follow_lists_again_after_410_and_yields_what_it_missed(api: Api) -> None:
    for name in ("keep", "gone", "changed"):
        api.store.create(model(name))
    client = Client(api.server, TOKEN)
    info = _kinds.find("models")
    known, rv = _watch.listing(client, info, "default")
    api.store.delete(MODEL, "default", "gone")
    api.store.patch_status(MODEL, "default", "changed", {"phase": "new"})
    api.store.create(model("fresh"))
    for i in range(60):  # the store keeps 50 changes: rv is compacted away now
        api.store.patch_status(MODEL, "default", "keep", {"phase": str(i)})

    events = []
    for type_, obj in _watch.follow(client, info, "default", rv, known, timeout=3):
        events.append((type_, obj["metadata"]["name"]))
        if len(events) == 4:
            break
    client.close()

    assert sorted(events) == [("ADDED", "fresh"), ("DELETED", "gone"), ("MODIFIED", "changed"),
                              ("MODIFIED", "keep")]
