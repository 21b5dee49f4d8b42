"""What a registered agent keeps on disk: its server, machine id and token, and its X25519 private key.

Both files are created 0600 in a 0700 directory, and the agent makes them so again when it starts. Nothing
else is ever written there: the credentials a run receives live only in memory and in the flow process's
environment.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.public import PrivateKey

CONFIG = "machine.json"
KEY = "private.key"


class StateError(Exception):
    pass


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "credflow-agent"


@dataclass
class AgentState:
    server: str
    machine_id: str
    machine_token: str
    name: str
    environment: str
    private_key: PrivateKey
    token_since: str | None = None  # when the machine token was issued (RFC 3339); None: not known yet

    def __repr__(self) -> str:  # never show the token or the key
        return f"AgentState(server={self.server!r}, machine_id={self.machine_id!r}, name={self.name!r})"


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def prepare_dir(state_dir: Path) -> None:
    if (state_dir / CONFIG).exists():
        raise StateError(f"{state_dir} already holds a registered machine; use another --state-dir")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)


def save_key(state_dir: Path, key: PrivateKey) -> None:
    write_private(state_dir / KEY, base64.b64encode(bytes(key)) + b"\n")


def save(state_dir: Path, state: AgentState) -> None:
    body = {"server": state.server, "machine_id": state.machine_id, "machine_token": state.machine_token,
            "name": state.name, "environment": state.environment, "token_since": state.token_since}
    write_private(state_dir / CONFIG, json.dumps(body, indent=2).encode() + b"\n")


def load(state_dir: Path) -> AgentState:
    try:
        body = json.loads((state_dir / CONFIG).read_text())
        key = PrivateKey(base64.b64decode((state_dir / KEY).read_bytes().strip()))
    except FileNotFoundError:
        raise StateError(f"no registered machine in {state_dir}; run `credflow agent register` first") from None
    except (ValueError, KeyError):
        raise StateError(f"the agent state in {state_dir} is damaged") from None
    return AgentState(body["server"], body["machine_id"], body["machine_token"], body.get("name", ""),
                      body.get("environment", ""), key, body.get("token_since"))


def make_private(state_dir: Path) -> list[tuple[Path, int, int]]:
    """Take every permission beyond 0700 off the state directory and beyond 0600 off the files in it (0700 off
    a directory in it); returns each (path, old mode, new mode) changed. Symbolic links are left alone."""
    changed: list[tuple[Path, int, int]] = []
    entries = [(state_dir, os.stat(state_dir))]
    entries += [(p, p.lstat()) for p in sorted(state_dir.iterdir())]
    for path, st in entries:
        if stat.S_ISLNK(st.st_mode):
            continue
        old = stat.S_IMODE(st.st_mode)
        new = old & (0o700 if stat.S_ISDIR(st.st_mode) else 0o600)
        if new != old:
            os.chmod(path, new)
            changed.append((path, old, new))
    return changed


def owned_by(state_dir: Path, uid: int) -> list[Path]:
    """The state directory and the entries in it that belong to ``uid``."""
    paths = [state_dir, *sorted(state_dir.iterdir())]
    return [p for p in paths if p.lstat().st_uid == uid]
