"""Request bodies for machines, desktop flows, connections, runs and cloud flows. Unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from credflow.api.schemas import Body


class RegistrationCreate(Body):
    expires_in_seconds: int | None = Field(default=None, ge=1)


class MachineRegister(Body):
    registration_token: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(min_length=1, max_length=100)


class Heartbeat(Body):
    running: list[str] | None = Field(default=None, max_length=100)


class JobResult(Body):
    exit_code: int
    log: str = ""


class GroupCreate(Body):
    name: str
    machines: list[str] = Field(default=[], max_length=1000)


class GroupUpdate(Body):
    name: str | None = None
    machines: list[str] | None = Field(default=None, max_length=1000)


class MachineUpdate(Body):
    name: str | None = None
    disabled: bool | None = Field(default=None, description="true: the machine claims nothing until enabled")


class DesktopFlowCreate(Body):
    name: str
    command: list[str]
    solution: str | None = None


class DesktopFlowUpdate(Body):
    name: str | None = None
    command: list[str] | None = None


class ConnectionCreate(Body):
    name: str
    target: dict[str, str]
    credential: str | None = None
    username: SecretStr | None = None
    password: SecretStr | None = None


class ConnectionUpdate(Body):
    """Every field optional. ``credential`` switches the connection to that credential (its typed username and
    password are forgotten); ``username`` and ``password`` switch it to typed values (both needed when it used a
    credential; either alone changes that one when it already had typed values)."""

    name: str | None = None
    target: dict[str, str] | None = None
    credential: str | None = None
    username: SecretStr | None = None
    password: SecretStr | None = None


class RunCreate(Body):
    desktop_flow: str
    connection: str
    timeout_seconds: int | None = None


class ReferenceCreate(Body):
    name: str
    connection: str | None = None


class ReferenceUpdate(Body):
    connection: str | None


class CloudFlowCreate(Body):
    name: str
    trigger: dict[str, Any]
    actions: list[dict[str, Any]]
    solution: str | None = None
