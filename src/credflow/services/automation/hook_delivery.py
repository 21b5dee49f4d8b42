"""Telling notification hooks: a background task compares each environment's findings with what every hook was
last told (``hook_notices``, so a restart does not tell it again) and POSTs each finding that appeared or cleared.

The body suits Slack (``text``), Teams (a MessageCard: ``@type``, ``summary``, ``text``) and anything else
(``event``, ``finding``, ``environment``); it holds findings only, never a secret value. It is signed:
``X-Credflow-Timestamp`` (Unix seconds) and ``X-Credflow-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<timestamp>.<body>`` under the hook's secret. A failed POST is tried again after 0.5 s and 1 s, then the hook
waits (doubling, up to ``MAX_BACKOFF_SECONDS``) and what it missed is sent on a later round. The URL is refused
when it is or resolves to a link-local address, no redirect is followed, and nothing of the server's own
environment (proxies, ~/.netrc) is used. On PostgreSQL an advisory lock per hook lets one server process tell it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import delete, func, select

from credflow.persistence.tables import Environment, HookNotice, NotificationHook
from credflow.services.automation import health
from credflow.services.automation.notification_hooks import opened
from credflow.services.core import Core, in_thread
from credflow.stores.base import StoreError
from credflow.stores.egress import refuse_link_local

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0
RETRY_DELAYS = (0.5, 1.0)
MAX_BACKOFF_SECONDS = 600.0
COLORS = {"critical": "D13438", "warning": "FFB900", "info": "0078D4"}
SIGNATURE = "X-Credflow-Signature"
TIMESTAMP = "X-Credflow-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def message(event: str, env: Environment, finding: dict[str, Any]) -> dict[str, Any]:
    """The JSON a hook receives for a finding that appeared or cleared."""
    what = finding.get("credential_name") or finding.get("connection_name") or ""
    head = f"[credflow {env.name}] {finding['severity'].upper()} {finding['kind']}"
    if event == "finding.cleared":
        text = f"[credflow {env.name}] cleared: {finding['kind']}" + (f" ({what})" if what else "")
    else:
        text = f"{head}: {finding['detail']}"
    return {"event": event, "environment": {"id": env.id, "name": env.name}, "finding": finding,
            "text": text, "summary": text[:150], "@type": "MessageCard", "@context": "https://schema.org/extensions",
            "themeColor": COLORS.get(finding["severity"], "808080"), "title": "credflow health"}


def post(client: httpx.Client, url: str, secret: str, payload: dict[str, Any]) -> None:
    """POST the signed payload, tried three times; raises when every try failed."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            refuse_link_local(url)
            stamp = str(int(time.time()))
            resp = client.post(url, content=body, headers={"content-type": "application/json", TIMESTAMP: stamp,
                                                           SIGNATURE: sign(secret, stamp, body)})
            if resp.status_code < 300:
                return
            problem: Exception = RuntimeError(f"HTTP {resp.status_code}")
        except (httpx.HTTPError, StoreError) as exc:
            problem = exc
        if delay is None:
            raise problem
        log.info("notification hook: try %d failed (%s)", attempt + 1, type(problem).__name__)
        time.sleep(delay)


def deliver(core: Core, client: httpx.Client, hook_id: str, found: list[dict[str, Any]]) -> int:
    """Tell one hook what appeared and cleared since it was last told; how many messages went out."""
    if core.db.is_sqlite:
        return _deliver(core, client, hook_id, found)
    with core.db.transaction() as lock:
        key = int.from_bytes(hashlib.sha256(f"hook:{hook_id}".encode()).digest()[:8], "big", signed=True)
        if not lock.scalar(select(func.pg_try_advisory_xact_lock(key))):
            return 0  # another server process is telling it
        return _deliver(core, client, hook_id, found)


def _deliver(core: Core, client: httpx.Client, hook_id: str, found: list[dict[str, Any]]) -> int:
    with core.db.read() as s:
        hook = s.get(NotificationHook, hook_id)
        if hook is None:
            return 0
        env = s.get(Environment, hook.env_id)
        url, secret = opened(core, s, hook)
        limit = health.RANK[hook.min_severity]
        told = {n.finding_key: n.finding for n in s.scalars(select(HookNotice).where(HookNotice.hook_id == hook_id))}
        s.expunge_all()
    assert env is not None
    wanted = {f["id"]: f for f in found if health.RANK[f["severity"]] <= limit}
    sent = 0
    for key, finding in wanted.items():
        if key not in told:
            post(client, url, secret, message("finding.appeared", env, finding))
            with core.db.transaction() as s:
                s.add(HookNotice(hook_id=hook_id, finding_key=key, severity=finding["severity"], finding=finding))
            sent += 1
    for key, finding in told.items():
        if key not in wanted:
            post(client, url, secret, message("finding.cleared", env, finding))
            with core.db.transaction() as s:
                s.execute(delete(HookNotice).where(HookNotice.hook_id == hook_id, HookNotice.finding_key == key))
            sent += 1
    return sent


class Notifier:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.stopping = threading.Event()
        self.failures: dict[str, int] = {}
        self.due: dict[str, float] = {}
        self._client: httpx.Client | None = None  # made for the first hook: its TLS context takes tens of ms

    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
        return self._client

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - one failed round never stops the notifier
                log.error("notification hooks: %s", type(exc).__name__)
            self.stopping.wait(self.core.settings.health_notify_interval_seconds)
        if self._client is not None:
            self._client.close()

    def tick(self) -> None:
        with self.core.db.read() as s:
            hooks = s.execute(select(NotificationHook.id, NotificationHook.env_id)
                              .order_by(NotificationHook.env_id, NotificationHook.id)).all()
        findings: dict[str, list[dict[str, Any]]] = {}
        for hook_id, env_id in hooks:
            if self.stopping.is_set() or self.due.get(hook_id, 0.0) > time.monotonic():
                continue
            if env_id not in findings:
                with self.core.db.read() as s:
                    findings[env_id] = health.compute(self.core, s, env_id)
            try:
                deliver(self.core, self.client(), hook_id, findings[env_id])
                self.failures.pop(hook_id, None)
                self.due.pop(hook_id, None)
            except Exception as exc:  # noqa: BLE001 - this hook's trouble never stops the others
                n = self.failures[hook_id] = self.failures.get(hook_id, 0) + 1
                self.due[hook_id] = time.monotonic() + min(2.0 ** n, MAX_BACKOFF_SECONDS)
                log.warning("notification hook %s: not delivered (%s); trying again later", hook_id,
                            type(exc).__name__)


def start(core: Core) -> Callable[[], None]:
    """Start the notifier thread; returns ``stop``."""
    notifier = Notifier(core)
    return in_thread("credflow-health-notifier", notifier.run, notifier.stopping)
