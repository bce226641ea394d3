"""The dispatcher runs every job on a worker, refuses beyond max_in_flight, survives a failing job, drains on stop."""

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

    def make(workers: int = 2, max_in_flight: int = 4) -> Dispatcher:
        d = Dispatcher(workers, max_in_flight, "test-pool")
        d.start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def test_jobs_never_run_on_the_submitting_thread(dispatcher) -> None:
    d = dispatcher()

    assert all(where(d).startswith("test-pool-") for _ in range(5))
    assert d.alive()


def test_jobs_beyond_max_in_flight_are_refused_and_stop_drains_the_rest(dispatcher) -> None:
    d = dispatcher(workers=1, max_in_flight=3)
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
    assert d.submit(job, 9) is False and not d.alive()  # stopped


def test_a_failing_job_is_counted_and_does_not_kill_the_worker(dispatcher) -> None:
    d = dispatcher(workers=1)

    def broken() -> None:
        raise RuntimeError("bug")

    assert d.submit(broken)
    assert where(d).startswith("test-pool-") and d.in_flight == 0
    assert d.failures == 1 and d.runs == 2 and d.alive()



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


def test_jobs_of_one_key_run_in_order_one_at_a_time(dispatcher) -> None:
    d = dispatcher(workers=4, max_in_flight=50)
    order: list[int] = []
    running = []
    overlap = []
    done = threading.Event()

    def job(i: int) -> None:
        running.append(i)
        overlap.append(len(running))
        time.sleep(0.001)
        order.append(i)
        running.remove(i)
        if i == 39:
            done.set()

    for i in range(40):
        assert d.submit(job, i, key="devices/cam-1/infer")
    assert done.wait(10)
    assert order == list(range(40))
    assert max(overlap) == 1


def test_a_busy_key_does_not_hold_up_another_key(dispatcher) -> None:
    d = dispatcher(workers=2, max_in_flight=10)
    release = threading.Event()
    other = threading.Event()

    assert d.submit(release.wait, 5, key="slow")
    assert d.submit(lambda: None, key="slow")  # queued behind the blocked job of its key
    assert d.submit(other.set, key="fast")
    assert other.wait(5), "a job of another key waited for the blocked key"
    release.set()


def test_stop_runs_the_jobs_queued_behind_a_key(dispatcher) -> None:
    d = dispatcher(workers=2, max_in_flight=10)
    release = threading.Event()
    finished: list[int] = []

    def job(i: int) -> None:
        if i == 0:
            release.wait(5)
        finished.append(i)

    for i in range(4):
        assert d.submit(job, i, key="k")
    threading.Timer(0.05, release.set).start()
    d.stop()
    assert finished == [0, 1, 2, 3]
