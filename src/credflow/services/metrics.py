"""What ``GET /metrics`` shows, in the Prometheus text format (docs/operations.md, Metrics).

The counters and histograms live here, one of each, and the code that does the work notes into them with one
call: requests (by route template, never the raw path), claim waits, rotation lag, vault calls. What is a count
of rows is read at scrape time (``services.scrape``). Labels are ids, kinds and statuses, never a name someone
typed, and never a value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

T = TypeVar("T")

REGISTRY = CollectorRegistry(auto_describe=True)
FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

REQUESTS = Counter("credflow_http_requests", "HTTP requests answered, by method, route template and status.",
                   ["method", "route", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("credflow_http_request_duration_seconds",
                            "Time to answer an HTTP request, by method and route template.",
                            ["method", "route"], buckets=FAST, registry=REGISTRY)
CLAIM_WAIT_SECONDS = Histogram("credflow_claim_wait_seconds",
                               "How long a machine's claim waited before it was answered, by outcome (job or none).",
                               ["outcome"], buckets=SLOW, registry=REGISTRY)
ROTATION_LAG_SECONDS = Histogram("credflow_rotation_lag_seconds",
                                 "From a secret change received (event, notify or poll) to its connections updated.",
                                 buckets=SLOW, registry=REGISTRY)
VAULT_CALLS = Counter("credflow_vault_calls", "Calls to secret stores, by store kind and result (ok or an error code).",
                      ["kind", "result"], registry=REGISTRY)


def request_done(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)


def claim_waited(seconds: float, got_job: bool) -> None:
    CLAIM_WAIT_SECONDS.labels("job" if got_job else "none").observe(max(0.0, seconds))


def rotation_applied(seconds: float) -> None:
    ROTATION_LAG_SECONDS.observe(max(0.0, seconds))


def vault_call(kind: str, call: Callable[[], T]) -> T:
    """``call()``, one call to a store of ``kind``, counted by its result: ok, or the error's code."""
    try:
        result = call()
    except Exception as exc:
        code = getattr(exc, "code", None)
        VAULT_CALLS.labels(kind, code if isinstance(code, str) and code.isidentifier() else "error").inc()
        raise
    VAULT_CALLS.labels(kind, "ok").inc()
    return result
