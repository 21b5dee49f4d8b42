"""The background scheduler: fires scheduled cloud flows and fails runs past their timeout.

Safe with several server processes: both steps take their rows under a lock (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the write transaction on SQLite) and change only rows still due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from credflow.services.automation import cloud_flows, leases, runs
from credflow.services.core import Core

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 2.0


def tick(core: Core) -> None:
    for step in (runs.expire_overdue, leases.expire_unseen, cloud_flows.fire_due):
        try:
            step(core)
        except Exception as exc:  # noqa: BLE001 - one failed tick never stops the scheduler
            log.error("scheduler step %s failed: %s", step.__name__, type(exc).__name__)


def start(core: Core) -> Callable[[], None]:
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.wait(INTERVAL_SECONDS):
            tick(core)

    thread = threading.Thread(target=loop, name="credflow-scheduler", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=10)

    return stop
