"""Running one job: the flow's command with the credential in its environment, its output captured and masked.

Output (stdout and stderr together) is kept in memory only: the first half of the log budget and a rolling
last half. The username and password are masked in what is reported, also inside longer text and when the
output breaks them across lines; where output was left out in the middle, the text around the cut is dropped
too, so no part of a value survives at the edges.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from credflow.domain.masking import mask

GRACE_SECONDS = 5.0


@dataclass
class Outcome:
    exit_code: int
    log: str


class Capture:
    def __init__(self, budget: int) -> None:
        self.head_limit = self.tail_limit = max(budget // 2, 1024)
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail.append(chunk)
        self.tail_size += len(chunk)
        while self.tail_size - len(self.tail[0]) >= self.tail_limit:
            gone = self.tail.popleft()
            self.tail_size -= len(gone)
            self.dropped += len(gone)

    def text(self, values: list[str], budget: int) -> str:
        tail = b"".join(self.tail)
        if not self.dropped:
            return fit(mask((bytes(self.head) + tail).decode("utf-8", "replace"), values), budget)
        pad = 2 * max((len(v) for v in values), default=0) + 16
        head_text = bytes(self.head).decode("utf-8", "replace")[:-pad]
        tail_text = tail.decode("utf-8", "replace")[pad:]
        note = f"\n[credflow agent: about {self.dropped} bytes of output left out]\n"
        return fit(mask(head_text, values) + note + mask(tail_text, values), budget)


def fit(text: str, budget: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= budget:
        return text
    note = "\n[credflow agent: log cut to fit]\n"
    return raw[:max(budget - len(note.encode()) - 8, 0)].decode("utf-8", "ignore") + note


def flow_environment(username: str, password: str, run_id: str, machine_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    env.update(CREDFLOW_USERNAME=username, CREDFLOW_PASSWORD=password, CREDFLOW_RUN_ID=run_id,
               CREDFLOW_MACHINE_ID=machine_id)
    return env


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(proc: subprocess.Popen[bytes]) -> None:
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def execute(command: list[str], env: dict[str, str], values: list[str], timeout: float,
            cancelled: threading.Event, budget: int) -> Outcome:
    """Run ``command`` to its end, its timeout or its cancellation; the log comes back masked."""
    capture = Capture(budget)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True)
    except OSError as exc:
        return Outcome(127, f"[credflow agent] the command could not be started: {type(exc).__name__}\n")
    assert proc.stdout is not None
    fd = proc.stdout.fileno()

    def read() -> None:
        while chunk := os.read(fd, 65536):
            capture.add(chunk)

    reader = threading.Thread(target=read, name="flow-output", daemon=True)
    reader.start()
    note = ""
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if cancelled.is_set():
                note = "[credflow agent] the run was cancelled; the flow was stopped\n"
                _stop(proc)
            elif time.monotonic() > deadline:
                note = f"[credflow agent] the run passed its timeout of {int(timeout)} s; the flow was stopped\n"
                _stop(proc)
            else:
                try:
                    proc.wait(0.2)
                except subprocess.TimeoutExpired:
                    pass
    finally:
        if proc.poll() is None:
            _stop(proc)
        reader.join(2.0)
        if reader.is_alive():  # something the flow started still holds its output open
            _signal_group(proc, signal.SIGKILL)
            reader.join(2.0)
    code = proc.returncode
    exit_code = 128 - code if code < 0 else code
    if note and exit_code == 0:
        exit_code = 1
    return Outcome(exit_code, capture.text(values, budget - len(note.encode())) + note)
