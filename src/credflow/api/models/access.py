"""Users, environments, teams and the audit trail."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from credflow.api.models.common import Public, Timestamp


class EnvironmentPublic(Public):
    id: str
    name: str
    organization: str
    created_at: Timestamp


class EnvironmentWithRole(EnvironmentPublic):
    my_role: str = Field(description="the caller's role here: system_administrator, environment_maker, basic_user")


class UserPublic(Public):
    id: str
    name: str
    email: str
    environment_roles: dict[str, str] = Field(description="environment id to role (only those the caller may see)")
    organization_admin: bool
    disabled: bool = Field(description="a disabled user's tokens and sessions answer 401")
    removed_at: Timestamp | None = Field(description="when the user was removed (it still owns what it made until "
                                                     "an administrator reassigns it); null for a current user")
    created_at: Timestamp


class UserCreated(UserPublic):
    token: str = Field(description="the user's first API token (named \"initial\", 90 days): shown only here")


class TokenPublic(Public):
    """A personal access token, without the token itself."""

    id: str
    name: str
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: Timestamp | None = Field(description="when it last authenticated a request, to the minute")
    expired: bool


class TokenCreated(TokenPublic):
    token: str = Field(description="the token: shown only here")


class MachineToken(Public):
    machine_token: str = Field(description="the machine's new token (the one it called with stops now)")


class Reassigned(Public):
    """What ``POST /environments/{env}/reassign`` moved, by kind of object."""

    from_user: str
    to_user: str
    environment: str
    moved: dict[str, int] = Field(description="kind of object -> how many changed owner")


class MachineIdentity(Public):
    """``GET /me`` called with a machine token."""

    kind: Literal["machine"]
    id: str
    name: str | None
    environment: str | None


class PasswordState(Public):
    """A password was set; the user must change it at the next sign-in when someone else set it."""

    id: str
    email: str
    must_change_password: bool


class TeamMemberPublic(Public):
    id: str
    name: str
    email: str


class TeamPublic(Public):
    id: str
    name: str
    environment: str
    members: list[TeamMemberPublic]
    created_at: Timestamp


class AuditRecordPublic(Public):
    id: str = Field(description="the sequence number, as the list's cursor")
    seq: int
    at: Timestamp
    actor: str
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict[str, Any] | None
    environment: str | None
    prev_hash: str
    hash: str


class DeviceLogin(Public):
    """A sign-in through the identity provider under way for a CLI (RFC 8628): show ``verification_uri`` and
    ``user_code`` to the person, then poll ``POST /auth/device/token`` with ``handle`` every ``interval`` seconds."""

    handle: str = Field(description="what the CLI polls with (credflow's own; the provider's codes stay here)")
    user_code: str | None
    verification_uri: str | None
    verification_uri_complete: str | None
    expires_in: int
    interval: int


class DevicePending(Public):
    status: Literal["authorization_pending"]


class DeviceUser(Public):
    id: str
    name: str


class DeviceToken(TokenCreated):
    """The credflow token a device sign-in ends with (never the provider's tokens)."""

    user: DeviceUser
