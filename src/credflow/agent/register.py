"""Registering a machine: a key pair made here, the public half sent with a single-use registration token."""

from __future__ import annotations

from pathlib import Path

from credflow.agent import state as agent_state
from credflow.client.http import Client
from credflow.crypto.sealing import new_key_pair


def register(server: str, registration_token: str, name: str, state_dir: Path) -> agent_state.AgentState:
    agent_state.prepare_dir(state_dir)
    key, public_key = new_key_pair()
    agent_state.save_key(state_dir, key)
    client = Client(server, None)
    try:
        made = client.post("/machines/register", {"registration_token": registration_token, "name": name,
                                                  "public_key": public_key})
    except Exception:
        (state_dir / agent_state.KEY).unlink(missing_ok=True)
        raise
    finally:
        client.close()
    st = agent_state.AgentState(server.rstrip("/"), made["machine_id"], made["machine_token"], name,
                                made.get("environment", ""), key)
    agent_state.save(state_dir, st)
    return st
