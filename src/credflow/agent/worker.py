"""The agent's loop: heartbeats, long-poll claims, one job at a time, results reported.

The heartbeat thread and a claim never overlap (one lock), so a heartbeat that names the runs the agent
executes can never fail a run the server is handing out at that moment. At start the agent says it runs
nothing, which fails any run a previous life of this agent left behind.

A run's result and the claim of the next job go in one request (``POST .../result?next=WAIT``). A server that
is away, stopping or answering 5xx (its database restarting, say) is asked again with a growing pause: a claim
answered 204 is simply asked again, and a run's result is kept and sent again (with ``next``) for up to
``REPORT_PATIENCE_SECONDS``, so a server restart loses no result; a result sent again after its answer was lost
is stored once and brings the job that answer carried.

An idle agent's long polls are its heartbeats (each marks the machine seen): ``DEFAULT_WAIT_SECONDS`` keeps them
under the 60 s a machine stays online, and under the idle timeout common in proxies.

The machine's token is replaced every ``ROTATE_TOKEN_DAYS`` (``POST /machines/me/token``, between two claims):
the new one is written to the state directory at once, and the old one stops.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from nacl.exceptions import CryptoError

from credflow.agent import executor
from credflow.agent import state as agent_state
from credflow.agent.state import AgentState
from credflow.client.http import ApiError, Client
from credflow.crypto.sealing import open_sealed

log = logging.getLogger("credflow.agent")
DEFAULT_BUDGET = 1_000_000
DEFAULT_WAIT_SECONDS = 50.0  # how long each long-poll claim waits for a job
REPORT_PATIENCE_SECONDS = 900.0  # how long a finished run's result is offered to a server that cannot take it
MAX_BACKOFF_SECONDS = 30.0
ROTATE_TOKEN_DAYS = 30
ROTATE_RETRY_SECONDS = 3600.0  # a rotation that failed is tried again after this long


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def rotate_token(st: AgentState, state_dir: Path | None, client: Client) -> AgentState:
    """Ask the server for a new machine token (the old one stops) and keep it in the state directory at once."""
    got = client.post("/machines/me/token")
    st.machine_token, st.token_since = got["machine_token"], _now()
    if state_dir is not None:
        agent_state.save(state_dir, st)
    return st


def token_due(st: AgentState, days: int = ROTATE_TOKEN_DAYS) -> bool:
    if not st.token_since:
        return False
    try:
        since = datetime.fromisoformat(st.token_since.replace("Z", "+00:00"))
    except ValueError:
        return True
    return datetime.now(UTC) - since >= timedelta(days=days)


def _passing(exc: ApiError) -> bool:
    """A refusal that may pass: the server or its database is busy, restarting or out of space for now."""
    return exc.status >= 500 or exc.status in (408, 429)


class Agent:
    def __init__(self, state: AgentState, wait: float = DEFAULT_WAIT_SECONDS, heartbeat_seconds: float = 10.0,
                 run_as: executor.RunAs | None = None, state_dir: Path | None = None) -> None:
        self.state = state
        self.state_dir = state_dir  # where a rotated token is kept (None: in memory only)
        self.rotate_tried: float | None = None  # monotonic time of the last attempt (None: never tried)
        self.run_as = run_as  # None: flows run as this agent's own user, with its environment
        self.wait = wait
        self.heartbeat_seconds = heartbeat_seconds
        self.http = Client(state.server, state.machine_token, timeout=wait + 30)
        self.beat_http = Client(state.server, state.machine_token, timeout=30)
        self.lock = threading.Lock()
        self.current: str | None = None
        self.cancelled = threading.Event()
        self.stopping = threading.Event()

    # --- heartbeats ------------------------------------------------------------------------------------------
    def beat(self) -> None:
        running = [self.current] if self.current else []
        answer = self.beat_http.post("/machines/me/heartbeat", {"running": running}) or {}
        if self.current and self.current in answer.get("cancel", []):
            log.info("run %s was cancelled or timed out on the server; stopping it", self.current)
            self.cancelled.set()

    def _heartbeats(self) -> None:
        while not self.stopping.wait(self.heartbeat_seconds):
            if not self.lock.acquire(blocking=False):
                continue  # a claim is in flight: it keeps the machine seen
            try:
                self.beat()
            except (ApiError, httpx.HTTPError) as exc:
                log.warning("heartbeat failed: %s", type(exc).__name__)
            finally:
                self.lock.release()

    # --- the machine's token ---------------------------------------------------------------------------------
    def maybe_rotate_token(self) -> bool:
        """Replace the token when it is ``ROTATE_TOKEN_DAYS`` old (a token of unknown age counts from now)."""
        if not self.state.token_since:
            self.state.token_since = _now()
            self._save()
            return False
        if not token_due(self.state) or (self.rotate_tried is not None
                                         and time.monotonic() - self.rotate_tried < ROTATE_RETRY_SECONDS):
            return False
        self.rotate_tried = time.monotonic()
        with self.lock:
            try:
                rotate_token(self.state, self.state_dir, self.beat_http)
            except (ApiError, httpx.HTTPError, OSError) as exc:
                log.warning("could not replace the machine token (%s); trying again later", type(exc).__name__)
                return False
            for client in (self.http, self.beat_http):
                client.http.headers["Authorization"] = f"Bearer {self.state.machine_token}"
        log.info("replaced the machine token (every %d days)", ROTATE_TOKEN_DAYS)
        return True

    def _reread_token(self) -> bool:
        """Take the token in the state directory when it is not the one in use (replaced from outside)."""
        if self.state_dir is None:
            return False
        try:
            kept = agent_state.load(self.state_dir)
        except agent_state.StateError:
            return False
        if kept.machine_token == self.state.machine_token:
            return False
        self.state.machine_token, self.state.token_since = kept.machine_token, kept.token_since
        for client in (self.http, self.beat_http):
            client.http.headers["Authorization"] = f"Bearer {kept.machine_token}"
        log.info("took the machine token replaced in %s", self.state_dir)
        return True

    def _save(self) -> None:
        if self.state_dir is None:
            return
        try:
            agent_state.save(self.state_dir, self.state)
        except OSError as exc:
            log.warning("could not write the agent state (%s)", type(exc).__name__)

    # --- jobs --------------------------------------------------------------------------------------------------
    def claim(self) -> dict[str, Any] | None:
        with self.lock:
            job: dict[str, Any] | None = self.http.post("/machines/me/jobs/claim", params={"wait": self.wait})
            self._take(job)
            return job

    def execute(self, job: dict[str, Any]) -> executor.Outcome:
        budget = int(job.get("max_log_bytes") or DEFAULT_BUDGET)
        try:
            values = json.loads(open_sealed(self.state.private_key, job["sealed_credential"]))
        except (CryptoError, ValueError, KeyError, TypeError):
            return executor.Outcome(1, "[credflow agent] the credential could not be opened with this machine's key\n")
        username, password = str(values.get("username") or ""), str(values.get("password") or "")
        command, timeout = list(job["command"]), float(job.get("timeout_seconds") or 3 * 3600)
        try:
            if self.run_as is not None:
                return executor.execute_as(self.run_as, command, username, password, job["run_id"],
                                           self.state.machine_id, timeout, self.cancelled, budget)
            env = executor.flow_environment(username, password, job["run_id"], self.state.machine_id)
            try:
                return executor.execute(command, env, [username, password], timeout, self.cancelled, budget)
            finally:
                del env
        finally:
            del values, username, password

    def report(self, run_id: str, outcome: executor.Outcome, next_wait: float | None = None
               ) -> dict[str, Any] | None:
        """Send the run's result, again while the server cannot take it (up to ``REPORT_PATIENCE_SECONDS``). With
        ``next_wait``, the same request claims the next job (waiting up to that long): returned, and made current
        under the lock, so that a heartbeat never names a run this agent no longer runs nor misses a new one."""
        body = {"exit_code": outcome.exit_code, "log": outcome.log}
        params = {"next": next_wait} if next_wait is not None else None
        deadline = time.monotonic() + REPORT_PATIENCE_SECONDS
        pause = 1.0
        while True:
            try:
                with self.lock:
                    job: dict[str, Any] | None = self.http.post(f"/machines/me/jobs/{run_id}/result", body,
                                                                params=params)
                    if next_wait is None:
                        return None
                    self._take(job)
                    return job
            except ApiError as exc:
                if exc.status == 413 and body["log"] == outcome.log:
                    body["log"] = executor.fit(outcome.log, 64_000)
                    continue
                if not _passing(exc):
                    log.warning("the server refused the result of run %s: %s", run_id, exc.problem.get("code"))
                    return None
                log.warning("the server cannot take the result of run %s now (%s); retrying", run_id,
                            exc.problem.get("code"))
            except httpx.HTTPError as exc:
                log.warning("reporting run %s failed (%s); retrying", run_id, type(exc).__name__)
            if time.monotonic() + pause > deadline or self.stopping.wait(pause):
                break
            pause = min(pause * 2, MAX_BACKOFF_SECONDS)
        log.error("gave up reporting run %s", run_id)
        return None

    def _take(self, job: dict[str, Any] | None) -> None:
        """The job the server handed out becomes the current one (with the lock held)."""
        self.current = job["run_id"] if job else None
        if job:
            self.cancelled.clear()

    def run_job(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """Run the job and report its result; returns the next job, handed out with the result (or None)."""
        run_id = job["run_id"]
        log.info("running run %s", run_id)
        started = time.monotonic()
        nxt: dict[str, Any] | None = None
        try:
            outcome = self.execute(job)
            nxt = self.report(run_id, outcome, None if self.stopping.is_set() else self.wait)
            log.info("run %s ended with exit code %s after %.1f s%s", run_id, outcome.exit_code,
                     time.monotonic() - started, f"; run {nxt['run_id']} came with its result" if nxt else "")
            return nxt
        finally:
            if nxt is None:
                with self.lock:
                    self.current = None

    # --- the loop ----------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until stopped; returns the process exit code."""
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                with self.lock:
                    self.beat()  # nothing runs yet: runs a previous life left behind are failed now
                break
            except ApiError as exc:
                if not _passing(exc):
                    log.error("the server refused this machine: %s", exc.problem.get("detail"))
                    return 2
                log.warning("the server cannot answer now (%s); retrying", exc.problem.get("code"))
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            except httpx.HTTPError as exc:
                log.warning("server unreachable (%s); retrying", type(exc).__name__)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True).start()
        log.info("machine %s (%s) waiting for jobs from %s", self.state.name, self.state.machine_id,
                 self.state.server)
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                self.maybe_rotate_token()
                asked = time.monotonic()
                job = self.claim()
                backoff = 1.0
                if job is None and time.monotonic() - asked < min(1.0, self.wait / 2):
                    # The server holds a run for this machine (the heartbeat sorts it out) or is stopping.
                    self.stopping.wait(1.0)
            except ApiError as exc:
                if exc.status == 401 and self._reread_token():
                    continue  # `credflow agent rotate-token` replaced it while this agent ran
                if exc.status in (401, 403):
                    log.error("the server refused this machine: %s", exc.problem.get("detail"))
                    return 2
                log.warning("claim failed: %s", exc.problem.get("code"))
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            except httpx.HTTPError as exc:
                log.warning("server unreachable (%s); retrying", type(exc).__name__)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            while job:
                job = self.run_job(job)
        return 0

    def close(self) -> None:
        self.stopping.set()
        self.http.close()
        self.beat_http.close()
