"""The work queue: de-duplication, one worker per key, backoff under a fake clock, forget."""

from __future__ import annotations

import threading

import pytest

from gm.runtime.outcomes import NamespacedName, Outcome, PermanentError, TemporaryError
from gm.runtime.queueing import ExponentialBackoff, FakeClock, ShutDown, WorkQueue
from gm.runtime.reconciling import Controller

A, B = NamespacedName("default", "a"), NamespacedName("default", "b")


def test_a_key_added_many_times_is_queued_once() -> None:
    queue: WorkQueue[NamespacedName] = WorkQueue(FakeClock())
    for _ in range(5):
        queue.add(A)
    queue.add(B)

    assert len(queue) == 2
    assert queue.get(timeout=0) == A
    assert queue.get(timeout=0) == B
    assert queue.get(timeout=0) is None


def test_a_key_being_processed_is_not_handed_out_again_until_done() -> None:
    queue: WorkQueue[NamespacedName] = WorkQueue(FakeClock())
    queue.add(A)
    taken = queue.get(timeout=0)

    queue.add(A)  # an event arrives while A is reconciled

    assert taken == A
    assert queue.get(timeout=0) is None
    queue.done(A)
    assert queue.get(timeout=0) == A


def test_backoff_doubles_from_half_a_second_and_caps_at_a_minute() -> None:
    backoff: ExponentialBackoff[NamespacedName] = ExponentialBackoff(0.5, 60.0)

    delays = [backoff.when(A) for _ in range(10)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff.retries(A) == 10
    assert backoff.when(B) == 0.5


def test_a_rate_limited_key_becomes_ready_only_when_its_delay_has_passed() -> None:
    clock = FakeClock()
    queue: WorkQueue[NamespacedName] = WorkQueue(clock)
    assert queue.add_rate_limited(A) == 0.5
    assert queue.add_rate_limited(A) == 1.0  # the earlier due time (0.5 s) is kept

    clock.advance(0.49)
    assert queue.get(timeout=0) is None
    clock.advance(0.02)
    assert queue.get(timeout=0) == A
    queue.done(A)
    clock.advance(5)
    assert queue.get(timeout=0) is None  # the superseded 1.0 s entry does not fire twice


def test_forget_resets_the_backoff() -> None:
    queue: WorkQueue[NamespacedName] = WorkQueue(FakeClock())
    for _ in range(3):
        queue.add_rate_limited(A)

    queue.forget(A)

    assert queue.retries(A) == 0
    assert queue.add_rate_limited(A) == 0.5


def test_shutdown_wakes_a_waiting_worker() -> None:
    queue: WorkQueue[NamespacedName] = WorkQueue()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            queue.get()
        except ShutDown as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    queue.shutdown()
    thread.join(5)

    assert not thread.is_alive()
    assert len(errors) == 1


class Scripted:
    """A reconciler that raises or returns what each call's script entry says."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.calls: list[NamespacedName] = []

    def reconcile(self, key: NamespacedName) -> Outcome:
        self.calls.append(key)
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, Outcome)
        return step


def test_an_unexpected_exception_is_requeued_with_backoff_and_success_forgets_it() -> None:
    clock = FakeClock()
    controller = Controller("test", Scripted(RuntimeError("boom"), RuntimeError("boom"), Outcome.done()), clock=clock)

    assert controller.process(A) is None
    assert controller.queue.delayed() == {A: 0.5}
    clock.advance(0.5)
    assert controller.queue.get(timeout=0) == A
    controller.queue.done(A)
    assert controller.process(A) is None
    assert controller.queue.delayed() == {A: 1.0}
    clock.advance(1.0)
    controller.queue.get(timeout=0)
    controller.queue.done(A)

    assert controller.process(A) == Outcome.done()
    assert controller.queue.retries(A) == 0


def test_temporary_error_uses_its_delay_and_permanent_error_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    controller = Controller("test", Scripted(TemporaryError("later", delay=7.0), PermanentError("never")),
                            clock=FakeClock())

    controller.process(A)
    assert controller.queue.delayed() == {A: 7.0}
    controller.process(B)

    assert B not in controller.queue.delayed()
    assert controller.queue.retries(B) == 0
    assert any("permanent error" in r.message and "never" in r.message for r in caplog.records)


def test_requeue_after_schedules_the_key_without_counting_a_failure() -> None:
    controller = Controller("test", Scripted(Outcome.requeue(30.0)), clock=FakeClock())

    controller.process(A)

    assert controller.queue.delayed() == {A: 30.0}
    assert controller.queue.retries(A) == 0


def test_workers_never_reconcile_one_key_concurrently() -> None:
    active: set[NamespacedName] = set()
    overlaps: list[NamespacedName] = []
    lock = threading.Lock()
    done = threading.Event()
    calls = {"n": 0}

    class Slow:
        def reconcile(self, key: NamespacedName) -> Outcome:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
                calls["n"] += 1
            threading.Event().wait(0.01)
            with lock:
                active.discard(key)
                if calls["n"] >= 20:
                    done.set()
            return Outcome.done()

    controller = Controller("test", Slow(), workers=4)
    controller.start()
    while not done.wait(0.002):  # keep adding while the keys are being processed
        controller.enqueue(A)
        controller.enqueue(B)
    controller.stop()

    assert overlaps == []
    assert calls["n"] >= 20
