"""LoopThread: set-up result or error reaches the starter, coroutines run on the loop, stop ends the thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sedna.common.loop_thread import LoopThread


def test_setup_result_then_calls_run_on_the_loop_thread_until_stopped() -> None:
    loop = LoopThread("test-loop")

    async def setup() -> str:
        return threading.current_thread().name

    async def where() -> tuple[str, bool]:
        await asyncio.sleep(0)
        return threading.current_thread().name, asyncio.get_running_loop() is loop.loop

    assert loop.start(setup) == "test-loop"
    assert loop.running
    assert loop.call(where(), 5) == ("test-loop", True)
    loop.stop()
    assert not loop.running and loop.loop.is_closed()
    loop.stop()  # a second stop is a no-op


def test_a_failing_setup_raises_in_the_starter_and_leaves_no_thread() -> None:
    loop = LoopThread("test-loop-fails")

    async def setup() -> None:
        raise OSError("cannot bind 127.0.0.1:1")

    with pytest.raises(OSError, match="cannot bind"):
        loop.start(setup)
    assert loop.loop.is_closed()
    assert "test-loop-fails" not in [t.name for t in threading.enumerate()]
