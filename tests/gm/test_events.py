"""Events are aggregated the same way by both backends: a repeat within the window is counted, not added."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from gm.cluster.events import EventRecorder, parse_time
from gm.cluster.interface import EVENT, Cluster, Obj
from tests.gm.test_cluster_contract import BACKENDS


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=sorted(BACKENDS))
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with BACKENDS[request.param]() as backend:
        yield backend


@pytest.fixture
def clock(cluster: Cluster) -> Clock:
    clock = Clock()
    cluster.events = EventRecorder(cluster, "sedna-gm", window=600, now=clock)  # type: ignore[attr-defined]
    return clock


@pytest.fixture
def owner(cluster: Cluster) -> Obj:
    return cluster.create({"apiVersion": "sedna.io/v1alpha1", "kind": "Model",
                           "metadata": {"name": "m", "namespace": "default"},
                           "spec": {"url": "/models/m.onnx", "format": "onnx"}})


def at(stamp: str) -> str:
    """The UTC time of day of a timestamp (the kubernetes client writes ``+00:00`` where the store writes ``Z``)."""
    parsed = parse_time(stamp)
    assert parsed is not None and parsed.date().isoformat() == "2025-03-01", stamp
    return parsed.strftime("%H:%M:%S")


def _events(cluster: Cluster) -> dict[str, Obj]:
    return {e["message"]: e for e in cluster.list(EVENT, "default")}


def test_the_same_reason_and_message_within_the_window_is_one_event_with_a_count(
        cluster: Cluster, clock: Clock, owner: Obj) -> None:
    for _ in range(3):
        cluster.emit_event(owner, "BackOff", "pod x is crash-looping", "Warning")
        clock.advance(60)
    cluster.emit_event(owner, "BackOff", "pod y is crash-looping", "Warning")

    events = _events(cluster)
    assert len(events) == 2
    counted = events["pod x is crash-looping"]
    assert (counted["count"], counted["type"], counted["reason"]) == (3, "Warning", "BackOff")
    assert (at(counted["firstTimestamp"]), at(counted["lastTimestamp"])) == ("12:00:00", "12:02:00")
    assert counted["involvedObject"]["uid"] == owner["metadata"]["uid"]
    assert counted["involvedObject"]["kind"] == "Model"
    assert events["pod y is crash-looping"]["count"] == 1


def test_a_repeat_after_the_window_starts_the_series_again(cluster: Cluster, clock: Clock, owner: Obj) -> None:
    cluster.emit_event(owner, "InvalidSpec", "spec.url: required")
    cluster.emit_event(owner, "InvalidSpec", "spec.url: required")
    clock.advance(601)

    cluster.emit_event(owner, "InvalidSpec", "spec.url: required")

    [event] = cluster.list(EVENT, "default")
    assert (event["count"], at(event["firstTimestamp"]), at(event["lastTimestamp"])) == (1, "12:10:01", "12:10:01")


def test_a_long_message_is_cut_and_an_event_never_fails_the_caller(cluster: Cluster, owner: Obj) -> None:
    cluster.emit_event(owner, "Big", "x" * 5000)
    cluster.emit_event({"kind": "Model"}, "NoMetadata", "an object without metadata is recorded or logged")

    big = next(e for e in cluster.list(EVENT, "default") if e["reason"] == "Big")
    assert len(big["message"]) == 1024 and big["message"].endswith("...")
