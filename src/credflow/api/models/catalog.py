"""Environment variables, credentials, their dependencies and shares, and solutions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from credflow.api.models.common import Page, Public, Timestamp, absent_if_none
from credflow.domain.statuses import ConnectionStatus


class SecretReferencePublic(Public):
    store: str | None
    store_name: str | None
    name: str | None
    version: str | None = Field(description="a pinned version, or null for the latest")


class _VariableBase(Public):
    id: str
    schema_name: str
    display_name: str
    type: str
    environment: str
    owner: str | None
    created_at: Timestamp
    updated_at: Timestamp


class TextVariablePublic(_VariableBase):
    type: Literal["text"]
    value: str | None


class SecretVariablePublic(_VariableBase):
    type: Literal["secret"]
    secret_reference: SecretReferencePublic


VariablePublic = Annotated[TextVariablePublic | SecretVariablePublic, Field(discriminator="type")]


class VariablePage(Page[VariablePublic]):
    pass


class VerificationPublic(Public):
    desktop_flow: str
    connection: str
    status: Literal["pending", "passed", "failed"] | None = Field(
        description="of the candidate version; null: never run")
    detail: str | None
    checked_at: Timestamp | None
    version: str | None = Field(description="the candidate version the status is about")
    verified_version: str | None = Field(description="the version every connection of the credential is on")
    run: str | None = Field(description="the verification run of the candidate")


class CredentialPublic(Public):
    id: str
    name: str
    description: str | None
    username_variable: str
    password_variable: str
    owner: str
    my_role: str | None = Field(description="owner, co_owner, user_share or user; what the caller holds")
    status: str
    environment: str
    max_concurrent_runs: int | None = Field(description="how many runs may use it at once; null: no limit")
    allowed_desktop_flows: list[str] | None = Field(description="null: any desktop flow may run with it")
    verification: VerificationPublic | None = Field(
        None, description="a new password version is given to this run first; connections move when it exits 0")
    max_age_days: int | None = Field(None, description="the health page says not_rotated past this age; null: "
                                                       "no bound")
    created_at: Timestamp
    updated_at: Timestamp


class CredentialLease(Public):
    run: str
    machine: str | None
    machine_name: str | None
    since: Timestamp | None = Field(description="when the run started, holding the lease")


class CredentialLeases(Public):
    """Who holds a credential's leases: one per running run that was delivered it."""

    credential: str
    max_concurrent_runs: int | None = Field(description="null: no limit")
    leases: list[CredentialLease] = Field(description="the running runs holding a lease, oldest first")
    waiting: int = Field(description="queued runs held back until a lease is free")


class DependentConnection(Public):
    id: str
    name: str
    owner: str
    owner_email: str | None
    credential: str
    status: ConnectionStatus


class DependentCloudFlow(Public):
    id: str
    name: str


class DependentCredential(Public):
    id: str
    name: str
    connections: int = Field(description="how many connections use it")


class CredentialDependencyCounts(Public):
    connections: int
    cloud_flows: int


class VariableDependencyCounts(CredentialDependencyCounts):
    credentials: int


class CredentialDependencies(Public):
    """Connections come a page at a time (``next_cursor``); cloud flows whole; ``counts`` are totals."""

    connections: list[DependentConnection]
    cloud_flows: list[DependentCloudFlow]
    next_cursor: str | None
    counts: CredentialDependencyCounts


class VariableDependencies(CredentialDependencies):
    counts: VariableDependencyCounts
    credentials: list[DependentCredential]


class UserSharePublic(Public):
    principal: str
    principal_type: Literal["user"]
    role: str = Field(description="owner, co_owner, user_share or user")
    name: str | None
    email: str | None
    granted_by: str | None
    created_at: Timestamp


class TeamSharePublic(Public):
    principal: str
    principal_type: Literal["team"]
    role: str = Field(description="co_owner, user_share or user")
    name: str | None
    granted_by: str | None
    created_at: Timestamp


SharePublic = Annotated[UserSharePublic | TeamSharePublic, Field(discriminator="principal_type")]


class SharePage(Page[SharePublic]):
    pass


class SolutionComponentPublic(Public):
    type: str = Field(description="environment_variable, credential, desktop_flow, connection_reference or "
                                  "cloud_flow")
    id: str
    name: str


class SolutionPublic(Public):
    id: str
    unique_name: str
    display_name: str
    version: str
    publisher: str | None
    environment: str
    owner: str | None
    created_at: Timestamp
    components: list[SolutionComponentPublic]


class SolutionComponentsAdded(SolutionPublic):
    added: list[SolutionComponentPublic] = Field(description="what this call added (with what it needs)")


class ImportedComponent(Public):
    type: str
    name: str
    id: str | None = Field(None, exclude_if=absent_if_none,
                           description="absent for what a dry run would create")


class ImportedSolution(Public):
    unique_name: str
    display_name: str
    version: str
    previous_version: str | None


class ImportReport(Public):
    created: list[ImportedComponent]
    updated: list[ImportedComponent]
    unchanged: list[ImportedComponent]
    solution: ImportedSolution
    dry_run: bool = Field(description="true: nothing was changed")
