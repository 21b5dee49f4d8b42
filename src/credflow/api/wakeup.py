"""Long-poll claims without a thread per waiting machine.

A waiting claim is a coroutine parked on an ``asyncio.Event``. When runs are queued in this process
(``core.emit("runs_queued", machine_ids, count)``) up to ``count`` of the longest-waiting candidate machines
are woken; every waiter also re-checks the database on its own every second or so, which is how runs queued
by another server process (or a wake-up that went to a machine that got another job) are found. The database
work runs in the thread pool, one short transaction at a time.

When the server begins to stop (``close``), every waiting claim answers "no job" (204) at once and later ones
do not wait or claim: the agents ask again, of whichever server answers next.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from credflow.services.automation import dispatch
from credflow.services.core import Actor, Core

RECHECK_SECONDS = 1.0


@dataclass
class Waiter:
    machine_id: str
    event: asyncio.Event = field(default_factory=asyncio.Event)
    woken_for: set[str] | None = None


class Waiters:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[int, Waiter] = {}  # in arrival order: the longest-waiting machine is woken first
        self._ids = itertools.count()
        self.closed = False

    def add(self, machine_id: str) -> tuple[int, Waiter]:
        key, waiter = next(self._ids), Waiter(machine_id)
        self._waiting[key] = waiter
        return key, waiter

    def remove(self, key: int) -> None:
        self._waiting.pop(key, None)

    def close(self) -> None:
        """The server is stopping: wake every waiting claim; from now on claims answer no job. Loop thread only."""
        self.closed = True
        for waiter in self._waiting.values():
            waiter.event.set()

    def notify(self, machine_ids: list[str], count: int = 1) -> None:
        """Callable from any thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.wake, set(machine_ids), count)

    def wake(self, machine_ids: set[str], count: int) -> None:
        for waiter in list(self._waiting.values()):
            if count <= 0:
                return
            if waiter.machine_id in machine_ids and not waiter.event.is_set():
                waiter.woken_for = machine_ids
                waiter.event.set()
                count -= 1


def waiters_for(app: FastAPI, core: Core) -> Waiters:
    waiters: Waiters | None = getattr(app.state, "claim_waiters", None)
    if waiters is None:
        waiters = Waiters(asyncio.get_running_loop())
        app.state.claim_waiters = waiters
        core.on("runs_queued", waiters.notify)
    return waiters


async def claim(request: Request, core: Core, actor: Actor, wait: float) -> dict[str, Any] | None:
    """The next job for the machine, waiting up to ``wait`` seconds for one; None when there is none. A machine
    that hung up is handed nothing (the job would be lost on the way), nor is any while the server stops."""
    waiters = waiters_for(request.app, core)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    check = True  # the first attempt and every wake-up go straight to a claim; timed re-checks read first
    while True:
        key, waiter = waiters.add(actor.id)
        try:
            result: Any = None
            if waiters.closed or await request.is_disconnected():
                return None
            if (check or await run_in_threadpool(dispatch.has_work, core, actor)) and not waiters.closed:
                result = await run_in_threadpool(dispatch.claim, core, actor)
            if result == dispatch.BUSY:
                return None
            if isinstance(result, dict):
                if waiter.woken_for:  # the wake-up may have been meant for a job another claim took: pass it on
                    waiters.wake(waiter.woken_for - {actor.id}, 1)
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            pause = min(remaining, RECHECK_SECONDS * random.uniform(0.8, 1.2))
            try:
                await asyncio.wait_for(waiter.event.wait(), pause)
                check = True
            except TimeoutError:
                check = False
        finally:
            waiters.remove(key)
