"""``credflow`` with every SQL statement it sends counted (a SQLAlchemy ``before_cursor_execute`` listener on all
engines), when ``CREDFLOW_BENCH_STATEMENTS`` names a file: the counts are written there as JSON every 0.2 s,
split into statements of background threads (``credflow-*``: rotation worker, poller, scheduler, ...) and of the
rest (requests, claims and their sweeps). Statements the driver sends by itself (BEGIN, COMMIT, the listening
connection's LISTEN) are not counted.

    CREDFLOW_BENCH_STATEMENTS=/tmp/a.json python bench/_counted.py serve ...
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

BACKGROUND = ("credflow-", "failed-auth")
counts = {"requests": 0, "background": 0}


def _count(*_: Any) -> None:
    kind = "background" if threading.current_thread().name.startswith(BACKGROUND) else "requests"
    counts[kind] += 1  # a lost increment between threads is within the noise of a benchmark


def _write(path: Path) -> None:
    while True:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(counts))
        tmp.replace(path)
        time.sleep(0.2)


if __name__ == "__main__":
    target = os.environ.get("CREDFLOW_BENCH_STATEMENTS")
    if target:
        event.listen(Engine, "before_cursor_execute", _count)
        threading.Thread(target=_write, args=(Path(target),), name="bench-counts", daemon=True).start()
    from credflow.cli.main import app

    app()
