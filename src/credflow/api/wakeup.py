"""Long-poll claims without a thread per waiting machine, woken across server processes.

A waiting claim is a coroutine parked on an ``asyncio.Event``: it looks at the database when it begins (one
statement, ``dispatch.look``) and then only when it is woken. A run queued in any server process on the same
database wakes it at once: ``core.emit("runs_queued", machine_ids, count)`` (or ``emit_on_commit`` in the
transaction that queues the runs) reaches this process's waiters directly and, on PostgreSQL, every other
process's through LISTEN/NOTIFY (``core.listen``); up to ``count`` of the longest-waiting candidate machines are
woken. A woken claim claims straight away; one that was woken for a job another claim took passes the wake-up
on.

As a safety net, one sweep per process asks which of the waiting machines have a run waiting (one read,
however many machines wait) and wakes those: every ``QUIET_SWEEP_SECONDS`` while this process hears the others
(PostgreSQL, listening), every ``SWEEP_SECONDS`` otherwise (SQLite, where other processes are not heard, or
while the listening connection is down), and at once when listening resumes after an outage. Database work runs
in the thread pool, one short transaction at a time.

``finish_and_claim`` is the one-request loop of the agent: the result of the run it held, then a claim. When
the same result is sent again because the answer was lost, it is not stored twice and the job that answer
carried is delivered again rather than a second one.

When the server begins to stop (``close``), every waiting claim answers "no job" (204) at once and later ones
do not wait or claim: the agents ask again, of whichever server answers next.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from credflow.services import metrics
from credflow.services.automation import dispatch
from credflow.services.core import RESUMED, Actor, Core

log = logging.getLogger(__name__)
SWEEP_SECONDS = 1.0  # while other processes' wake-ups cannot be heard
QUIET_SWEEP_SECONDS = 30.0  # while they are: a safety net only


@dataclass
class Waiter:
    machine_id: str
    event: asyncio.Event = field(default_factory=asyncio.Event)
    woken_for: set[str] | None = None


class Waiters:
    def __init__(self, loop: asyncio.AbstractEventLoop, core: Core) -> None:
        self._loop = loop
        self._core = core
        self._waiting: dict[int, Waiter] = {}  # in arrival order: the longest-waiting machine is woken first
        self._ids = itertools.count()
        self._sweep_now = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self.closed = False

    def add(self, machine_id: str) -> tuple[int, Waiter]:
        key, waiter = next(self._ids), Waiter(machine_id)
        self._waiting[key] = waiter
        if self._sweeper is None and not self.closed:
            self._sweeper = self._loop.create_task(self._sweeps(), name="credflow-claim-sweeps")
        return key, waiter

    def remove(self, key: int) -> None:
        self._waiting.pop(key, None)

    def close(self) -> None:
        """The server is stopping: wake every waiting claim; from now on claims answer no job. Loop thread only."""
        self.closed = True
        for waiter in self._waiting.values():
            waiter.event.set()
        if self._sweeper is not None:
            self._sweeper.cancel()

    def notify(self, machine_ids: list[str], count: int = 1) -> None:
        """Callable from any thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.wake, set(machine_ids), count)

    def resumed(self) -> None:
        """Other processes are heard again, after an outage in which their wake-ups were lost: sweep now.
        Callable from any thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._sweep_now.set)

    def wake(self, machine_ids: set[str], count: int) -> None:
        for waiter in list(self._waiting.values()):
            if count <= 0:
                return
            if waiter.machine_id in machine_ids and not waiter.event.is_set():
                waiter.woken_for = machine_ids
                waiter.event.set()
                count -= 1

    async def _sweeps(self) -> None:
        while not self.closed:
            quiet = self._core.listening.is_set()
            try:
                await asyncio.wait_for(self._sweep_now.wait(), QUIET_SWEEP_SECONDS if quiet else SWEEP_SECONDS)
            except TimeoutError:
                if quiet and not self._core.listening.is_set():
                    continue  # the listening connection was lost meanwhile: sweep at the quicker pace from now
            self._sweep_now.clear()
            waiting = sorted({w.machine_id for w in self._waiting.values() if not w.event.is_set()})
            if not waiting or self.closed:
                continue
            try:
                found = await run_in_threadpool(dispatch.with_work, self._core, waiting)
            except Exception as exc:  # noqa: BLE001 - the database is away: the next sweep tries again
                log.warning("claims: the sweep for waiting runs failed (%s)", type(exc).__name__)
                continue
            self.wake(found, len(found))


def waiters_for(app: FastAPI, core: Core) -> Waiters:
    waiters: Waiters | None = getattr(app.state, "claim_waiters", None)
    if waiters is None:
        waiters = Waiters(asyncio.get_running_loop(), core)
        app.state.claim_waiters = waiters
        core.on("runs_queued", waiters.notify)
        core.on(RESUMED, waiters.resumed)
    return waiters


async def claim(request: Request, core: Core, actor: Actor, wait: float, look: bool = True,
                first: Callable[[bool], Any] | None = None) -> dict[str, Any] | None:
    """The next job for the machine, waiting up to ``wait`` seconds for one; None when there is none. A machine
    that hung up is handed nothing (the job would be lost on the way), nor is any while the server stops.
    ``look``: look before claiming (one statement when nothing waits); False claims at once. ``first``: what
    to do instead of the first claim, called in the thread pool with whether to claim too (it runs even for a
    machine that hung up)."""
    waiters = waiters_for(request.app, core)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        key, waiter = waiters.add(actor.id)  # before looking: a wake-up meanwhile is not missed
        try:
            stopped = waiters.closed or await request.is_disconnected()
            result: Any = None
            if first is not None:  # it runs even when stopped (it stores a result), and claims only when not
                step, first = first, None
                result = await run_in_threadpool(step, not stopped)
                if stopped and not isinstance(result, dict):
                    return None
            elif stopped:
                return None
            else:
                if look:
                    seen = await run_in_threadpool(dispatch.look, core, actor)
                    if seen == dispatch.BUSY:
                        return None
                    look = not seen
                if not look and not waiters.closed:
                    result = await run_in_threadpool(dispatch.claim, core, actor)
            if result == dispatch.BUSY:
                return None
            if isinstance(result, dict):
                metrics.claim_waited(wait - (deadline - loop.time()), got_job=True)
                if waiter.woken_for:  # the wake-up may have been meant for a job another claim took: pass it on
                    waiters.wake(waiter.woken_for - {actor.id}, 1)
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(waiter.event.wait(), remaining)
            except TimeoutError:
                return None
            look = False  # woken: claim straight away
        finally:
            waiters.remove(key)


async def finish_and_claim(request: Request, core: Core, actor: Actor, run_id: str, exit_code: int, log_text: str,
                           wait: float) -> dict[str, Any] | None:
    """Store the result of ``run_id``, then answer like a claim waiting up to ``wait`` seconds. A result sent
    again whose first answer was lost is stored once, and the job that answer carried comes again (never a
    second job while the first is held)."""
    return await claim(request, core, actor, wait, look=False, first=lambda claim_next: dispatch.report_and_claim(
        core, actor, run_id, exit_code, log_text, claim_next))
