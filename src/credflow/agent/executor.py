"""Running one job: the flow's command with the credential in its environment, its output captured and masked.

Output (stdout and stderr together) is kept in memory only: the first half of the log budget and a rolling
last half. The username and password are masked in what is reported, also inside longer text and when the
output breaks them across lines; where output was left out in the middle, the text around the cut is dropped
too, so no part of a value survives at the edges.

With a run-as user (``credflow agent run --run-as USER``) the flow runs as that unprivileged user, without the
agent's supplementary groups, in a fresh 0700 directory of its own (removed afterwards) and with a clean
environment, so it cannot read the agent's state directory (the machine's token and private key).
"""

from __future__ import annotations

import collections
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

from credflow.domain.masking import mask

GRACE_SECONDS = 5.0
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
# What running flows as another user takes of a process that is not root: switching to the user, giving it
# its directory, and removing what the flow left there afterwards (a directory of the user's in /tmp).
NEEDED_CAPABILITIES = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_SETGID": 6, "CAP_SETUID": 7}

log = logging.getLogger("credflow.agent")


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
    """Without a run-as user: the agent's environment minus its ``CREDFLOW_*`` settings, plus the run's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    env.update(CREDFLOW_USERNAME=username, CREDFLOW_PASSWORD=password, CREDFLOW_RUN_ID=run_id,
               CREDFLOW_MACHINE_ID=machine_id)
    return env


# --- flows as another user -------------------------------------------------------------------------------------
class RunAsError(Exception):
    pass


@dataclass(frozen=True)
class RunAs:
    name: str
    uid: int
    gid: int


def resolve_run_as(spec: str) -> RunAs:
    """The unprivileged user ``spec`` (a name or a uid) names; RunAsError says why it cannot be used."""
    spec = spec.strip()
    try:
        entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
    except (KeyError, OverflowError):
        raise RunAsError(f"--run-as {spec!r}: there is no such user on this computer") from None
    if entry.pw_uid == 0:
        raise RunAsError(f"--run-as {spec!r}: that is root (uid 0); flows must run as an unprivileged user, "
                         "or they can read the machine's key and token")
    if entry.pw_uid == os.geteuid():
        raise RunAsError(f"--run-as {spec!r}: that is the agent's own user; flows must run as another, "
                         "unprivileged user, or they can read the machine's key and token")
    if entry.pw_gid == 0:
        raise RunAsError(f"--run-as {spec!r}: the user's group is root's (gid 0); use an unprivileged user")
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def missing_privileges() -> list[str]:
    """What this process lacks to run flows as another user: nothing for root (with its usual capabilities)."""
    try:
        with open("/proc/self/status") as fh:
            status = fh.read()
    except OSError:
        return [] if os.geteuid() == 0 else ["root"]
    effective = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")), 0)
    return [name for name, bit in NEEDED_CAPABILITIES.items() if not effective >> bit & 1]


def isolated_environment(run_as: RunAs, home: str, username: str, password: str, run_id: str,
                         machine_id: str) -> dict[str, str]:
    """With a run-as user: a minimal PATH, the user's names, HOME in its fresh directory, LANG, the run's values."""
    env = {"PATH": SAFE_PATH, "HOME": home, "USER": run_as.name, "LOGNAME": run_as.name}
    if lang := os.environ.get("LANG"):
        env["LANG"] = lang
    env.update(CREDFLOW_USERNAME=username, CREDFLOW_PASSWORD=password, CREDFLOW_RUN_ID=run_id,
               CREDFLOW_MACHINE_ID=machine_id)
    return env


def make_work_directory(run_as: RunAs) -> str:
    """A fresh directory in the agent's temporary directory, 0700 and the run-as user's."""
    path = tempfile.mkdtemp(prefix="credflow-run-")
    try:
        os.chown(path, run_as.uid, run_as.gid)
        os.chmod(path, 0o700)
    except OSError:
        os.rmdir(path)
        raise
    return path


def remove_work_directory(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        log.warning("the flow's directory %s could not be removed entirely", path)


def execute_as(run_as: RunAs, command: list[str], username: str, password: str, run_id: str, machine_id: str,
               timeout: float, cancelled: threading.Event, budget: int) -> Outcome:
    """Run ``command`` as ``run_as`` in a fresh directory with a clean environment; the directory goes after."""
    try:
        home = make_work_directory(run_as)
    except OSError as exc:
        return Outcome(1, f"[credflow agent] the flow's directory could not be made: {type(exc).__name__}\n")
    try:
        env = isolated_environment(run_as, home, username, password, run_id, machine_id)
        return execute(command, env, [username, password], timeout, cancelled, budget, run_as=run_as, cwd=home)
    finally:
        remove_work_directory(home)


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
            cancelled: threading.Event, budget: int, *, run_as: RunAs | None = None, cwd: str | None = None
            ) -> Outcome:
    """Run ``command`` to its end, its timeout or its cancellation; the log comes back masked.

    With ``run_as`` the process is that user's, with its own group and no supplementary groups; whatever it
    leaves running in its process group is stopped when it ends."""
    capture = Capture(budget)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True, close_fds=True,
                                user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
                                extra_groups=[] if run_as else None)
    except OSError as exc:
        who = f" as user {run_as.name}" if run_as else ""
        return Outcome(127, f"[credflow agent] the command could not be started{who}: {type(exc).__name__}\n")
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
        if run_as is not None:
            _signal_group(proc, signal.SIGKILL)
        reader.join(2.0)
        if reader.is_alive():  # something the flow started still holds its output open
            _signal_group(proc, signal.SIGKILL)
            reader.join(2.0)
    code = proc.returncode
    exit_code = 128 - code if code < 0 else code
    if note and exit_code == 0:
        exit_code = 1
    return Outcome(exit_code, capture.text(values, budget - len(note.encode())) + note)
