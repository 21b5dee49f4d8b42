"""The app's life: the background workers start with it, and a graceful stop drains it.

A stop has two steps. ``drain(app)`` comes first, as soon as the stop is asked for (``credflow serve`` calls it
from its SIGTERM/SIGINT handler, before the server stops listening): claims waiting for a job answer 204 at
once and later ones get no job, and each background worker is told to stop once its current step (a rotation
event, a poll, a scheduler tick) is done. Then, after the requests in flight have finished, the lifespan's
shutdown waits up to ``STOP_WORKERS_SECONDS`` for the workers. Every step of a worker is one transaction, so
a worker still busy when the process exits leaves nothing half-written: its step is done again at the next
start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from credflow.api import wakeup
from credflow.services.core import Core

log = logging.getLogger(__name__)
STOP_WORKERS_SECONDS = 3.0


class Background:
    """The running workers, each known by its ``stop`` (which returns once the worker has stopped)."""

    def __init__(self, stops: list[Callable[[], Any]]) -> None:
        self._stops = stops
        self._stopping: list[threading.Thread] = []
        self._lock = threading.Lock()

    def stop_soon(self) -> None:
        """Tell every worker to stop after its current step, without waiting (once; later calls do nothing)."""
        with self._lock:
            if self._stopping or not self._stops:
                return
            self._stopping = [threading.Thread(target=stop, name="credflow-stop", daemon=True) for stop in self._stops]
            for thread in self._stopping:
                thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every worker to stop; False when one is still busy."""
        self.stop_soon()
        deadline = time.monotonic() + timeout
        for thread in self._stopping:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._stopping)


def lifespan(core: Core, starts: list[Callable[[Core], Callable[[], Any]]]
             ) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: ``starts`` (each ``start(core) -> stop``) run while the app runs."""

    @asynccontextmanager
    async def life(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        wakeup.waiters_for(app, core)  # subscribed before the first wake-up can arrive
        stop_listening = core.listen()  # the other server processes' wake-ups (PostgreSQL)
        background = Background([start(core) for start in starts])

        def begin() -> None:  # in the event loop's thread
            waiters = wakeup.waiters_for(app, core)
            if not waiters.closed:
                log.info("stopping: waiting claims answered, background workers finishing their current step")
            waiters.close()
            background.stop_soon()

        def drain_threadsafe() -> None:
            try:
                loop.call_soon_threadsafe(begin)
            except RuntimeError:  # the loop has already closed: nothing is left to drain
                pass

        app.state.drain = drain_threadsafe
        try:
            yield
        finally:
            begin()
            await asyncio.to_thread(stop_listening)
            if not await asyncio.to_thread(background.wait, STOP_WORKERS_SECONDS):
                log.warning("a background worker was still busy after %.0f s; its step will be done again at the "
                            "next start", STOP_WORKERS_SECONDS)

    return life


def drain(app: FastAPI) -> None:
    """Begin a graceful stop (see the module's description). Safe from a signal handler and from any thread;
    does nothing before the app has started."""
    begin: Callable[[], None] | None = getattr(app.state, "drain", None)
    if begin is not None:
        begin()
