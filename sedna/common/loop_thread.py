"""An asyncio event loop on its own daemon thread, for servers that live beside blocking code.

:meth:`LoopThread.start` runs a set-up coroutine on the new loop and hands back its result
(or raises its error), then keeps the loop running; :meth:`LoopThread.call` runs a coroutine
there from any other thread; :meth:`LoopThread.stop` ends the loop and joins the thread.
The gRPC servers that run on ``grpc.aio`` (the inference front end, the GM's edge hub) use it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """One event loop, run by one daemon thread called ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def start(self, setup: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Start the thread, run ``setup()`` on the loop and return its result; the loop then keeps running.

        When ``setup`` raises, the loop is closed, the thread ends and the error is raised here.
        """
        if self._thread is not None:
            raise RuntimeError(f"loop thread {self.name!r} started twice")
        ready: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                result = self.loop.run_until_complete(setup())
            except BaseException as exc:
                self.loop.close()
                ready.set_exception(exc)
                return
            ready.set_result(result)
            self.loop.run_forever()
            self.loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        try:
            return ready.result(timeout)
        except BaseException:
            self.stop(5.0)  # the thread is ending (or, after a timeout, told to)
            raise

    @property
    def running(self) -> bool:
        """Whether the loop is serving (set-up done, not stopped)."""
        return self.loop.is_running()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop from another thread and wait up to ``timeout`` seconds for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (pending callbacks are dropped) and wait up to ``timeout`` seconds for the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        thread.join(timeout)
