"""Edge-side batching of offloads: hard examples that arrive together travel together.

Threads that offload at the same time (an edge server's request threads, MQTT devices, the rows
of one request) hand their samples to one :class:`OffloadBatcher`. A sample that finds fewer
than ``max_in_flight`` cloud calls running goes at once, so a lone hard example pays no delay;
samples that arrive while the calls are busy queue, and the next free call takes every queued
sample of the same dtype and row shape (up to ``max_batch`` rows) as one request. No thread of
its own: the caller whose sample is the oldest queued sends the next batch itself.

A batch call has the earliest deadline of its samples. When the cloud refuses a batch as
invalid input, each of its samples is sent again on its own, so only a bad sample is refused;
any other failure is every sample's failure.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError

SendBatch = Callable[[np.ndarray, "float | None"], Sequence[Any]]
"""``send(rows, timeout)``: the cloud's answers for ``rows`` (stacked on dim 0), one per row group."""


@dataclass(eq=False)
class _Entry:
    array: np.ndarray
    deadline: float | None
    owner: threading.Condition
    """The submitting caller's condition (on the batcher's lock): notified when it has something to do."""
    key: tuple[Any, ...] = ()
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.key = (self.array.dtype.str, self.array.shape[1:])

    @property
    def rows(self) -> int:
        return int(self.array.shape[0])


@dataclass
class BatchStats:
    """What an :class:`OffloadBatcher` sent: cloud calls and the samples they carried."""

    calls: int = 0
    samples: int = 0
    split_retries: int = 0
    """Batches refused as invalid and sent again one sample at a time."""

    @property
    def mean_batch(self) -> float:
        """Samples per call."""
        return self.samples / self.calls if self.calls else 0.0


class OffloadBatcher:
    """Gathers concurrent offloads into batch calls (see the module docstring).

    ``send(rows, timeout)`` makes one cloud call for ``rows`` (samples concatenated on dim 0)
    and returns the answer per row (anything indexable by a slice of rows, e.g. an array).
    """

    def __init__(self, send: Callable[[np.ndarray, float | None], Any], max_batch: int = 32,
                 max_in_flight: int = 2) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError(f"max_batch ({max_batch}) and max_in_flight ({max_in_flight}) must be >= 1")
        self._send = send
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.stats = BatchStats()
        self._lock = threading.Lock()
        self._queue: deque[_Entry] = deque()
        self._in_flight = 0

    @property
    def queued(self) -> int:
        """Samples waiting for a free cloud call."""
        with self._lock:
            return len(self._queue)

    def submit(self, arrays: Sequence[np.ndarray], timeout: float | None = None) -> list[Any]:
        """The cloud's answer for each array (each a batch of one or more rows), or the exception
        its call raised, in order. Waits at most about ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        owner = threading.Condition(self._lock)  # woken only when this caller has something to do
        mine = [_Entry(np.asarray(a), deadline, owner) for a in arrays]
        with self._lock:
            self._queue.extend(mine)
            while not all(e.done for e in mine):
                # The owner of the oldest sample sends its batch, so no caller waits on a call
                # whose deadline is later than its own.
                if self._in_flight < self.max_in_flight and self._queue and self._queue[0].owner is owner:
                    self._run(self._take())
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._expire(mine, owner, timeout)
                    break
                owner.wait(left)
        return [e.error if e.error is not None else e.result for e in mine]

    def _take(self) -> list[_Entry]:
        """The next batch: the oldest queued sample and the queued samples that fit with it."""
        first = self._queue.popleft()
        batch, rows, keep = [first], first.rows, deque()
        while self._queue:
            entry = self._queue.popleft()
            if entry.key == first.key and rows + entry.rows <= self.max_batch:
                batch.append(entry)
                rows += entry.rows
            else:
                keep.append(entry)
        keep.extend(self._queue)
        self._queue = keep
        return batch

    def _run(self, batch: list[_Entry]) -> None:
        """Send ``batch`` with the lock released; settle its entries and wake their callers."""
        self._in_flight += 1
        self._wake_next()
        self._lock.release()
        try:
            self._settle(batch)
        finally:
            self._lock.acquire()
            self._in_flight -= 1
            self.stats.calls += 1
            self.stats.samples += len(batch)
            for entry in batch:
                entry.done = True
            for owner in {entry.owner for entry in batch}:
                owner.notify()
            self._wake_next()

    def _wake_next(self) -> None:
        """Wake the owner of the oldest queued sample if a call is free for it to send."""
        if self._queue and self._in_flight < self.max_in_flight:
            self._queue[0].owner.notify()

    def _settle(self, batch: list[_Entry]) -> None:
        try:
            answers = self._call(batch)
        except InvalidInputError as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            with self._lock:
                self.stats.split_retries += 1
            for entry in batch:
                try:
                    entry.result = self._call([entry])[0]
                except Exception as single:  # each sample gets its own verdict
                    entry.error = single
            return
        except Exception as exc:  # every sample of the call failed with it
            for entry in batch:
                entry.error = exc
            return
        for entry, answer in zip(batch, answers, strict=True):
            entry.result = answer

    def _call(self, batch: list[_Entry]) -> list[Any]:
        deadlines = [e.deadline for e in batch if e.deadline is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        rows = batch[0].array if len(batch) == 1 else np.concatenate([e.array for e in batch])
        output = self._send(rows, timeout)
        if len(batch) == 1:
            return [output]
        total = sum(e.rows for e in batch)
        if len(output) != total:
            raise InvalidInputError(f"the cloud answered {len(output)} rows for a batch of {total}")
        answers, start = [], 0
        for entry in batch:
            answers.append(output[start:start + entry.rows])
            start += entry.rows
        return answers

    def _expire(self, mine: list[_Entry], owner: threading.Condition, timeout: float | None) -> None:
        """Give up on the caller's samples still queued (not those a running call carries)."""
        error = CloudUnavailableError(f"no cloud call was free within the {timeout} s deadline")
        for entry in mine:
            if not entry.done and entry in self._queue:
                self._queue.remove(entry)
                entry.error, entry.done = error, True
        self._wake_next()  # another caller's sample may be the oldest now
        while not all(e.done for e in mine):  # carried by a running call with the same deadline
            owner.wait()


def is_outage(answer: Any) -> bool:
    """Whether a cloud answer is a failure that is not the sample's fault (a circuit breaker counts those)."""
    return isinstance(answer, (InferenceError, OSError)) and not isinstance(answer, InvalidInputError)


def send_one_by_one(send: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``send(item)`` for each item, in order: its answer or the InferenceError (or OSError) it raised.
    After an outage the rest are not sent and share its error, instead of each waiting out a deadline."""
    answers: list[Any] = []
    for item in items:
        if answers and is_outage(answers[-1]):
            answers.append(answers[-1])
            continue
        try:
            answers.append(send(item))
        except (InferenceError, OSError) as exc:
            answers.append(exc)
    return answers


__all__ = ["BatchStats", "OffloadBatcher", "is_outage", "send_one_by_one"]
