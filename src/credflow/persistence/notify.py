"""PostgreSQL LISTEN/NOTIFY: wake-ups between the server processes (replicas) that share one database.

A ``Channel`` is named after the schema the engine works in (``credflow_<schema>``), so two deployments in two
schemas of one database do not hear each other. ``send`` issues ``pg_notify`` in the caller's transaction:
PostgreSQL delivers it when that transaction commits, and never when it rolls back. A ``Listener`` keeps one
connection of its own (taken out of the engine's pool, with the engine's connection settings) in ``LISTEN`` in a
thread, hands every payload to a callback, checks the connection every ``PING_SECONDS`` while nothing arrives,
stops the moment it is asked to (the thread waits on the connection and on a wake-up socket at once), and
connects again (with a growing pause) when PostgreSQL restarts or the connection is lost. Notifications sent
while it was away are not kept by PostgreSQL: ``on_connect`` runs after every (re)connection so that the caller
can look at the database once.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)
PREFIX = "credflow_"
MAX_PAYLOAD_BYTES = 7900  # PostgreSQL refuses a payload of 8000 bytes or more
PING_SECONDS = 60.0  # a quiet listening connection is checked this often (a lost one raises at once)
STOP_SECONDS = 3.0  # how long ``stop`` waits for the listening thread
MAX_PAUSE_SECONDS = 5.0  # the longest pause between two attempts to connect again


def channel_name(schema: str | None) -> str:
    return (PREFIX + (schema or "public"))[:63]  # PostgreSQL identifiers have at most 63 bytes


class Channel:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._name: str | None = None

    def name(self, conn: Any) -> str:
        """The channel's name; ``conn`` (a Session or Connection) is asked for its schema the first time."""
        if self._name is None:
            self._name = channel_name(conn.scalar(text("SELECT current_schema()")))
        return self._name

    def send(self, conn: Any, payload: str) -> None:
        """NOTIFY in ``conn``'s transaction: delivered to every listener when it commits."""
        conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": self.name(conn), "payload": payload})


class Listener:
    """One LISTEN connection in a thread: ``deliver(payload)`` for each notification, ``on_connect()`` after each
    (re)connection, ``on_lost()`` when the connection is lost. Callbacks run in the listening thread."""

    def __init__(self, channel: Channel, deliver: Callable[[str], None], on_connect: Callable[[], None],
                 on_lost: Callable[[], None]) -> None:
        self.channel, self.deliver, self.on_connect, self.on_lost = channel, deliver, on_connect, on_lost
        self.stopping = threading.Event()
        self._woken, self._waker = socket.socketpair()  # a byte on _waker ends the thread's wait at once
        self._thread = threading.Thread(target=self._run, name="credflow-wakeups", daemon=True)

    def start(self) -> Callable[[], None]:
        """Start listening; returns ``stop``."""
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        self.stopping.set()
        try:
            self._waker.send(b"x")
        except OSError:  # the thread has ended and closed it
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=STOP_SECONDS)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._woken.close()
            self._waker.close()

    def _serve(self) -> None:
        pause = 0.5
        while not self.stopping.is_set():
            conn = None
            try:
                conn = self._connect()
                pause = 0.5
                self._listen(conn)
            except Exception as exc:  # noqa: BLE001 - any failure: note it, connect again
                if not self.stopping.is_set():
                    log.warning("wake-ups: the listening connection to PostgreSQL failed (%s); connecting again",
                                type(exc).__name__)
            finally:
                self._safely(self.on_lost)
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001 - it is gone either way
                        pass
            if self.stopping.wait(pause):
                break
            pause = min(pause * 2, MAX_PAUSE_SECONDS)

    def _connect(self) -> Any:
        raw = self.channel.engine.raw_connection()
        conn = raw.driver_connection
        raw.detach()  # its own connection from now on, never handed back to the pool
        if conn is None or not hasattr(conn, "notifies"):
            raw.close()
            raise RuntimeError("the PostgreSQL driver cannot LISTEN (psycopg 3.2 or later is needed)")
        conn.rollback()  # the pool's check may have begun a transaction
        conn.autocommit = True
        return conn

    def _listen(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT current_schema()")
            row = cur.fetchone()
        name = channel_name(row[0] if row else None)
        conn.execute('LISTEN "' + name.replace('"', '""') + '"')
        log.info("wake-ups: listening on PostgreSQL channel %s", name)
        self._safely(self.on_connect)
        with selectors.DefaultSelector() as waiting:
            waiting.register(conn.fileno(), selectors.EVENT_READ)
            waiting.register(self._woken, selectors.EVENT_READ)
            quiet_since = time.monotonic()
            arrived = True  # notifications may have come with the answers to the statements above
            while not self.stopping.is_set():
                if arrived:  # every notification received, without waiting for more
                    for note in conn.notifies(timeout=0):
                        quiet_since = time.monotonic()
                        if note.channel == name:
                            self._safely(self.deliver, note.payload)
                ready = waiting.select(max(0.0, PING_SECONDS - (time.monotonic() - quiet_since)))
                if any(key.fileobj is self._woken for key, _ in ready):
                    return
                arrived = bool(ready)
                if time.monotonic() - quiet_since >= PING_SECONDS:
                    conn.execute("SELECT 1")  # a connection lost without a word raises here
                    quiet_since, arrived = time.monotonic(), True

    @staticmethod
    def _safely(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a callback never stops the listening thread
            log.exception("wake-ups: a callback failed")
