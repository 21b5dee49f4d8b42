"""Request bodies. Unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    environment_roles: dict[str, str] = {}
    organization_admin: bool = False


class EnvironmentCreate(Body):
    name: str = Field(min_length=1, max_length=200)


class StoreCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    kind: str
    vault_url: str | None = Field(default=None, max_length=500)
    config: dict[str, Any] = {}


class StoreUpdate(Body):
    """Every field optional. ``config`` is merged into the stored config: a field left out keeps its value (a
    secret one too, so a token can be rotated alone), a field set to null is cleared. ``kind`` may be given but
    not changed."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    vault_url: str | None = Field(default=None, min_length=1, max_length=500)
    config: dict[str, Any] | None = None
    kind: str | None = None


class StoreAccessSet(Body):
    principal: str = Field(min_length=1)
    allowed: bool


class SecretPut(Body):
    value: str
    expires_at: str | None = Field(default=None, description="RFC 3339: when this version stops being good")


class VariableCreate(Body):
    schema_name: str
    display_name: str | None = None
    type: str
    value: str | None = None
    secret_reference: dict[str, Any] | str | None = None
    solution: str | None = None


class VariableUpdate(Body):
    display_name: str | None = None
    value: str | None = None
    secret_reference: dict[str, Any] | str | None = None


class VerificationSet(Body):
    desktop_flow: str = Field(min_length=1, description="the desktop flow that checks a new password (id or name)")
    connection: str = Field(min_length=1, description="one of the credential's connections it runs on")


class CredentialCreate(Body):
    name: str
    description: str | None = None
    username_variable: str
    password_variable: str
    solution: str | None = None
    max_age_days: int | None = Field(default=None, ge=1, description="not_rotated past this age; null: no bound")
    max_concurrent_runs: StrictInt | None = Field(None, description="how many runs may use it at once; null: no limit")
    verification: VerificationSet | None = None


class CredentialUpdate(BaseModel):
    # Extra fields allowed here so that naming a variable gets the seed's own error, not "unknown field".
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    description: str | None = None
    allowed_desktop_flows: list[str] | None = None
    max_age_days: int | None = Field(default=None, ge=1, description="not_rotated past this age; null: no bound")
    max_concurrent_runs: StrictInt | None = None
    verification: VerificationSet | None = Field(
        default=None, description="a new password version runs this flow on this connection first; null: none")
