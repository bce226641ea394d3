"""Dynamic batching: concurrent requests to one model run as one ``predict`` call.

Each request is queued with its arrival time; a worker thread takes the oldest request
and keeps adding compatible ones (same input names, dtypes and non-batch dimensions)
up to ``max_batch_size`` samples. When to stop waiting for more is the policy:

- **adaptive** (the default): when no batch of this model is running, what is queued goes
  at once, so a lone request pays no queue delay; requests that arrive while a batch runs
  wait for it and go together as the next batch. ``max_queue_delay`` then only bounds how
  long a gathered batch waits for a fuller one while another worker's batch keeps the model
  busy (``workers`` > 1); with one worker the model is never busy when it looks.
- **fixed** (``adaptive=False``, Triton's dynamic batcher with a queue delay): the oldest
  request always waits up to ``max_queue_delay`` for the batch to fill.

Inputs are concatenated along dim 0, the model runs once, and every output is split back
so each requester gets exactly its own rows. A request larger than the limit runs alone. A
request whose waiter was cancelled (its caller gave up, a deadline passed) before its batch
formed is dropped, not computed. An exception in ``predict`` fails the futures of that
batch only; the worker keeps going.

:mod:`.server` owns one :class:`Batcher` per batching model. Threads wait on the
:class:`~concurrent.futures.Future` that :meth:`Batcher.submit` returns; event-loop front
ends await the :class:`asyncio.Future` of :meth:`Batcher.submit_async`, and a batch wakes
each loop once for all its requests (a wake-up per request cost the worker a tenth of its time).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from sedna.backend.tensors import Prediction, ServedModel
from sedna.common.log import get_logger

LOG = get_logger(__name__)

Waiter = Future[Prediction] | asyncio.Future[Prediction]
"""What a requester waits on: a thread's future, or a future of the requester's event loop."""
BatchObserver = Callable[[int, list[float], float], None]
"""``observe(batch_size, queue_seconds_per_request, compute_seconds)`` after each batch."""


@dataclass
class _Request:
    inputs: Mapping[str, np.ndarray]
    size: int
    enqueued: float
    key: tuple[tuple[str, str, tuple[int, ...]], ...]
    """What requests batched together must share (computed by the requester, not the worker)."""
    future: Waiter = field(default_factory=Future)
    loop: asyncio.AbstractEventLoop | None = None
    """The loop that owns ``future`` when it is an asyncio future."""


def _batch_key(inputs: Mapping[str, np.ndarray]) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    return tuple(sorted((n, a.dtype.str, a.shape[1:]) for n, a in inputs.items()))


class Batcher:
    """Queue and worker threads that batch requests to one model."""

    def __init__(self, model: ServedModel, max_batch_size: int, max_queue_delay_ms: float, workers: int = 1,
                 observe: BatchObserver | None = None, adaptive: bool = True) -> None:
        self.model = model
        self.limit = max(1, min(max_batch_size, model.max_batch_size))
        self.delay = max_queue_delay_ms / 1000.0
        self.adaptive = adaptive
        self._observe = observe
        self._pending: collections.deque[_Request] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._running = 0  # batches of this model in predict right now
        self._threads = [
            threading.Thread(target=self._run, name=f"batcher-{model.name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Mapping[str, np.ndarray]) -> Future[Prediction]:
        """Queue one request (already validated; dim 0 is its batch size)."""
        request = self._request(inputs)
        self._enqueue(request)
        return request.future  # type: ignore[return-value]

    def submit_async(self, inputs: Mapping[str, np.ndarray]) -> asyncio.Future[Prediction]:
        """:meth:`submit` from a coroutine: the result arrives on the running loop."""
        loop = asyncio.get_running_loop()
        request = self._request(inputs)
        request.future, request.loop = loop.create_future(), loop
        self._enqueue(request)
        return request.future

    def _request(self, inputs: Mapping[str, np.ndarray]) -> _Request:
        size = int(next(iter(inputs.values())).shape[0]) if inputs else 1
        return _Request(inputs, size, time.monotonic(), _batch_key(inputs))

    def _enqueue(self, request: _Request) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError(f"model {self.model.name!r} is shutting down")
            self._pending.append(request)
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers after the queued requests have run."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._execute(batch)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()  # the model may be idle now: a held batch may go

    def _next_batch(self) -> list[_Request] | None:
        with self._cond:
            while True:
                batch = self._gather()
                if batch is None:
                    return None
                batch = [r for r in batch if _claim(r)]  # callers may have given up while it gathered
                if batch:
                    break
            self._running += 1
            if self._pending:
                self._cond.notify()  # another worker may start on the rest
            return batch

    def _gather(self) -> list[_Request] | None:
        """The next batch by the policy (see the module docstring); None once closed and drained."""
        while True:
            while self._pending and self._pending[0].future.cancelled():
                self._pending.popleft()
            if self._pending:
                break
            if self._closed:
                return None
            self._cond.wait()
        first = self._pending.popleft()
        batch, total, key = [first], first.size, first.key
        deadline = first.enqueued + self.delay
        while total < self.limit:
            if self._pending:
                nxt = self._pending[0]
                if nxt.future.cancelled():
                    self._pending.popleft()
                    continue
                if total + nxt.size > self.limit or nxt.key != key:
                    break
                batch.append(self._pending.popleft())
                total += nxt.size
                continue
            if self.adaptive and self._running == 0:
                break  # the model is idle: waiting would only add latency
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                break
            self._cond.wait(remaining)
        return batch

    def _execute(self, batch: list[_Request]) -> None:
        started = time.monotonic()
        queued = [started - r.enqueued for r in batch]
        try:
            if len(batch) == 1:
                inputs = batch[0].inputs
            else:
                inputs = {name: np.concatenate([r.inputs[name] for r in batch]) for name in batch[0].inputs}
            prediction = self.model.predict(inputs)
            parts = _split(prediction, [r.size for r in batch]) if len(batch) > 1 else [prediction]
        except BaseException as exc:  # every requester of this batch must hear about it
            LOG.warning("model %r failed on a batch of %d request(s): %s", self.model.name, len(batch), exc)
            _complete(batch, [None] * len(batch), exc)
            return
        finally:
            if self._observe is not None:
                self._observe(sum(r.size for r in batch), queued, time.monotonic() - started)
        _complete(batch, parts, None)


def _claim(request: _Request) -> bool:
    """Take ``request`` into a batch unless its caller gave up (cancelled its waiter) already.

    A thread's future is marked running here, so it cannot be cancelled once it is in a batch;
    an event loop's future still can be, and :func:`_resolve` (on that loop) skips it then.
    """
    future = request.future
    if request.loop is None:
        return bool(future.set_running_or_notify_cancel())  # type: ignore[union-attr]
    return not future.done()


def _complete(batch: list[_Request], parts: list[Prediction | None], error: BaseException | None) -> None:
    """Hand each request its part (or ``error``): thread futures here, each event loop's in one call on it."""
    by_loop: dict[asyncio.AbstractEventLoop | None, list[tuple[Waiter, Prediction | None]]] = {}
    for request, part in zip(batch, parts, strict=True):
        by_loop.setdefault(request.loop, []).append((request.future, part))
    for loop, waiters in by_loop.items():
        if loop is None:
            _resolve(waiters, error)
            continue
        try:
            loop.call_soon_threadsafe(_resolve, waiters, error)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            pass


def _resolve(waiters: list[tuple[Waiter, Prediction | None]], error: BaseException | None) -> None:
    for future, part in waiters:
        if future.done():  # the caller cancelled it
            continue
        if error is None:
            future.set_result(part)  # type: ignore[arg-type]
        else:
            future.set_exception(error)


def _split(prediction: Prediction, sizes: list[int]) -> list[Prediction]:
    total = sum(sizes)
    bounds = list(itertools.accumulate(sizes, initial=0))
    slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]  # views: plain slicing beats np.split's overhead
    pieces: dict[str, list[np.ndarray]] = {}
    for name, value in prediction.outputs.items():
        array = np.asarray(value)
        if array.ndim == 0 or array.shape[0] != total:
            raise RuntimeError(
                f"model output {name!r} has shape {list(array.shape)}, expected batch dimension {total} "
                f"(the model declares max_batch_size > 0, so outputs must keep dim 0)"
            )
        pieces[name] = [array[part] for part in slices]
    return [
        Prediction({name: parts[i] for name, parts in pieces.items()}, dict(prediction.parameters))
        for i in range(len(sizes))
    ]
