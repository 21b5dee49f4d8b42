"""Machines and the agent, desktop flows, connections, runs, cloud flows and connection references."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from credflow.api.models.common import Public, Timestamp, absent_if_none
from credflow.domain.statuses import ConnectionStatus, RunStatus


class Registration(Public):
    id: str
    registration_token: str = Field(description="single use, shown only here")
    expires_at: Timestamp
    environment: str


class MachineRegistered(Public):
    machine_id: str
    machine_token: str = Field(description="the machine's token: shown only here")
    environment: str
    name: str


class MachinePublic(Public):
    id: str
    name: str
    environment: str
    public_key: str
    status: Literal["online", "offline"] = Field(
        description="online while it sends heartbeats or claims; offline before its first one (last_seen null)")
    last_seen: Timestamp | None = Field(description="its last heartbeat or claim; null until its first")
    groups: list[str]
    owner: str | None
    disabled: bool = Field(description="a disabled machine claims nothing until enabled")
    created_at: Timestamp


class MachineGroupPublic(Public):
    id: str
    name: str
    environment: str
    machines: list[str]
    owner: str | None
    created_at: Timestamp


class HeartbeatAnswer(Public):
    machine_id: str
    status: Literal["online"]
    last_seen: Timestamp
    cancel: list[str] = Field(description="runs the agent should stop")


class Job(Public):
    """A claimed job. ``sealed_credential`` is a libsodium sealed box to the machine's public key (standard
    base64) holding ``{"username", "password", "version"}``: ciphertext only that machine opens."""

    run_id: str
    command: list[str]
    sealed_credential: str
    desktop_flow: str
    connection: str
    secret_version: str | None
    timeout_seconds: int
    max_log_bytes: int
    started_at: Timestamp


class DesktopFlowPublic(Public):
    id: str
    name: str
    command: list[str]
    environment: str
    created_by: str | None
    owner: str | None
    created_at: Timestamp


class MachineTarget(Public):
    machine: str


class MachineGroupTarget(Public):
    machine_group: str


class ConnectionPublic(Public):
    id: str
    name: str
    target: MachineTarget | MachineGroupTarget | None
    credential: str | None
    auth: Literal["credential", "username_password"]
    owner: str
    status: ConnectionStatus = Field(description="connected, or why runs cannot get the values")
    secret_version: str | None = Field(description="the version the next run receives")
    environment: str
    created_at: Timestamp
    updated_at: Timestamp
    secret_checked_at: Timestamp | None = Field(description="when the vault last confirmed the secret")
    secret_age_seconds: int | None
    secret_stale_since: Timestamp | None = Field(description="since when the vault fails (last good version)")
    secret_error: str | None


class RunSummary(Public):
    id: str
    status: RunStatus
    reason: str | None = Field(description="why the run ended other than by its flow's exit code 0: a stable code "
                                           "(cancelled, exit_code, timed_out, machine_lost, machine_deleted, "
                                           "access_revoked, ...); null while it is queued or running, when it "
                                           "succeeded, and for runs that ended before reasons were kept")
    reason_detail: str | None = Field(description="the reason as a sentence")
    desktop_flow: str
    connection: str
    cloud_flow: str | None
    machine: str | None
    exit_code: int | None
    secret_version: str | None
    timeout_seconds: int
    created_by: str | None
    environment: str
    queued_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    waiting_for: Literal["credential_lease"] | None = Field(
        None, description="credential_lease: queued and held back until a lease of its credential is free")
    lease_waited_since: Timestamp | None = Field(None, description="when it was first held back for a lease")


class RunPublic(RunSummary):
    log: str = Field(description="the run's output, with the credential's values masked")


class MachineDetail(MachinePublic):
    runs: list[RunSummary] = Field(description="its latest runs that the caller sees (at most 10), newest first")


class ConnectionReferencePublic(Public):
    id: str
    name: str
    connection: str | None
    owner: str | None
    environment: str
    created_at: Timestamp


class ManualTrigger(Public):
    type: Literal["manual"]


class ScheduleTrigger(Public):
    type: Literal["schedule"]
    cron: str = Field(description="five-field cron expression, UTC")


class CloudFlowAction(Public):
    type: Literal["run_desktop_flow"]
    desktop_flow: str
    connection_reference: str
    timeout_seconds: int | None = Field(None, exclude_if=absent_if_none, description="absent: the default")


class CloudFlowPublic(Public):
    id: str
    name: str
    trigger: Annotated[ManualTrigger | ScheduleTrigger, Field(discriminator="type")]
    actions: list[CloudFlowAction]
    owner: str | None
    next_fire_at: Timestamp | None
    environment: str
    created_at: Timestamp


class CloudFlowRun(Public):
    cloud_flow: str
    runs: list[RunPublic] = Field(description="one queued run per action")
