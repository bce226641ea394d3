"""The dispatcher runs cheap jobs inline, slow ones on workers, refuses beyond max_in_flight, drains on stop."""

from __future__ import annotations

import threading
import time

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sedna.service.mqtt.connection import PublishProperties, publish_properties
from sedna.service.mqtt.dispatch import Dispatcher


def where(dispatcher: Dispatcher, work: float = 0.0) -> str:
    """Submit one job sleeping ``work`` seconds; the name of the thread that ran it."""
    ran: list[str] = []
    done = threading.Event()

    def job() -> None:
        time.sleep(work)
        ran.append(threading.current_thread().name)
        done.set()

    assert dispatcher.submit(job)
    assert done.wait(5)
    return ran[0]


@pytest.fixture
def dispatcher():
    started: list[Dispatcher] = []

    def make(**kwargs: float) -> Dispatcher:
        values = {"workers": 2, "max_in_flight": 4, "inline_max_s": 0.005, **kwargs}
        d = Dispatcher(int(values["workers"]), int(values["max_in_flight"]), values["inline_max_s"], "test-pool")
        d.start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def test_cheap_jobs_run_on_the_calling_thread(dispatcher) -> None:
    d = dispatcher()

    assert [where(d) for _ in range(5)] == [threading.current_thread().name] * 5
    assert d.inline_runs == 5 and d.pooled_runs == 0


def test_slow_jobs_move_to_the_workers_and_cheap_ones_come_back(dispatcher) -> None:
    d = dispatcher(inline_max_s=0.005)
    me = threading.current_thread().name

    slow = [where(d, 0.03) for _ in range(12)]
    cheap = [where(d) for _ in range(40)]

    assert slow[0] == me  # nothing known yet: the first runs inline
    assert slow[-1].startswith("test-pool-")  # 12 runs of 30 ms pushed the mean over 5 ms
    assert cheap[-1] == me  # 40 cheap runs brought it back under
    assert d.mean_s < 0.005


def test_zero_threshold_never_runs_inline(dispatcher) -> None:
    d = dispatcher(inline_max_s=0.0)

    assert all(where(d).startswith("test-pool-") for _ in range(3))


def test_jobs_beyond_max_in_flight_are_refused_and_stop_drains_the_rest(dispatcher) -> None:
    d = dispatcher(workers=1, max_in_flight=3, inline_max_s=0.0)
    release = threading.Event()
    finished: list[int] = []

    def job(i: int) -> None:
        release.wait(5)
        finished.append(i)

    accepted = [d.submit(job, i) for i in range(5)]
    in_flight = d.in_flight
    release.set()
    d.stop()

    assert accepted == [True, True, True, False, False] and in_flight == 3
    assert finished == [0, 1, 2] and d.in_flight == 0
    assert d.submit(job, 9) is False  # stopped


def test_a_failing_job_does_not_kill_the_worker(dispatcher) -> None:
    d = dispatcher(workers=1, inline_max_s=0.0)

    def broken() -> None:
        raise RuntimeError("bug")

    assert d.submit(broken)
    assert where(d).startswith("test-pool-") and d.in_flight == 0


@pytest.mark.parametrize(("topic", "correlation"), [
    ("sedna/default/s/response/dev-1", b"dev-1-42"), (None, b"\x00\xffbinary"), ("a/" + "x" * 300, None),
    ("t", b"c" * 200),
])
def test_publish_properties_pack_like_paho(topic: str | None, correlation: bytes | None) -> None:
    reference = Properties(PacketTypes.PUBLISH)
    if topic is not None:
        reference.ResponseTopic = topic
    if correlation is not None:
        reference.CorrelationData = correlation

    assert PublishProperties(topic, correlation).pack() == reference.pack()


def test_no_publish_properties_for_mqtt_311_or_when_empty() -> None:
    assert publish_properties("3.1.1", correlation=b"x") is None
    assert publish_properties("5") is None
