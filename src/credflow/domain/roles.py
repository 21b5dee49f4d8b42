"""Roles and the actions they allow: the single table every authorization decision reads."""

from __future__ import annotations

from enum import StrEnum

from credflow.domain.errors import RuleViolation


class EnvironmentRole(StrEnum):
    SYSTEM_ADMINISTRATOR = "system_administrator"
    ENVIRONMENT_MAKER = "environment_maker"
    BASIC_USER = "basic_user"


class CredentialRole(StrEnum):
    OWNER = "owner"
    CO_OWNER = "co_owner"
    USER = "user"
    USER_SHARE = "user_share"


# Environment-level actions. A system administrator may do everything in the environment.
_BASIC = {
    "environment.read",
    "credential.create_list",  # list what is visible to the caller
    "connection.create",
    "connection.list",
    "desktop_flow.read",
    "run.create",
    "run.read",
    "machine.read",
    "machine_group.read",
    "rotation.notify",
    "connection_reference.read",
    "cloud_flow.read",
    "team.read",
}
_MAKER = _BASIC | {
    "secret_store.read",
    "variable.create",
    "variable.read",
    "variable.update",
    "variable.delete",
    "credential.create",
    "desktop_flow.create",
    "cloud_flow.create",
    "cloud_flow.run",
    "connection_reference.create",
    "machine.register",
    "machine_group.write",
    "solution.read",
    "solution.write",
}
_ADMIN = _MAKER | {
    "environment.admin",
    "secret_store.create",
    "secret_store.admin",
    "secret.write",
    "machine.delete",
    "event_key.admin",
    "rotation.notify_all",  # a notice of a secret change refreshes every connection, not only the caller's
    "audit.read",
    "team.write",
    "credential.admin",  # sees and acts on every credential of the environment
    "connection.admin",
    "user.admin",
}

ENVIRONMENT_ROLE_ACTIONS: dict[EnvironmentRole, frozenset[str]] = {
    EnvironmentRole.BASIC_USER: frozenset(_BASIC),
    EnvironmentRole.ENVIRONMENT_MAKER: frozenset(_MAKER),
    EnvironmentRole.SYSTEM_ADMINISTRATOR: frozenset(_ADMIN),
}

CREDENTIAL_ROLE_ACTIONS: dict[CredentialRole, frozenset[str]] = {
    CredentialRole.OWNER: frozenset({"view", "use", "share", "edit", "delete"}),
    CredentialRole.CO_OWNER: frozenset({"view", "use", "share", "edit", "delete"}),
    CredentialRole.USER: frozenset({"view", "use"}),
    CredentialRole.USER_SHARE: frozenset({"view", "use", "share"}),
}

# Which roles a holder of a role may grant. The seed: a user_share grants only user or user_share.
GRANTABLE: dict[CredentialRole, frozenset[CredentialRole]] = {
    CredentialRole.OWNER: frozenset({CredentialRole.CO_OWNER, CredentialRole.USER, CredentialRole.USER_SHARE}),
    CredentialRole.CO_OWNER: frozenset({CredentialRole.CO_OWNER, CredentialRole.USER, CredentialRole.USER_SHARE}),
    CredentialRole.USER_SHARE: frozenset({CredentialRole.USER, CredentialRole.USER_SHARE}),
    CredentialRole.USER: frozenset(),
}

_RANK = {CredentialRole.USER: 1, CredentialRole.USER_SHARE: 2, CredentialRole.CO_OWNER: 3, CredentialRole.OWNER: 4}


def credential_role_named(value: str, allowed: tuple[CredentialRole, ...]) -> CredentialRole:
    """The credential role ``value`` names, as the API spells it (``co_owner``, ``user_share``) or as the seed
    does (``co-owner``, ``Co-owner``, ``user-share``), if it is one of ``allowed``; else RuleViolation
    ``unknown_role`` listing them."""
    key = value.strip().lower().replace("-", "_") if isinstance(value, str) else ""
    role = next((r for r in allowed if r.value == key), None)
    if role is None:
        names = [r.value for r in allowed]
        raise RuleViolation(f"a role is one of {', '.join(names)} (the seed's co-owner and user-share are "
                            "accepted too)", code="unknown_role", allowed=names)
    return role


def strongest(roles: list[CredentialRole]) -> CredentialRole | None:
    return max(roles, key=_RANK.__getitem__) if roles else None


def env_allows(role: EnvironmentRole | None, action: str) -> bool:
    return role is not None and action in ENVIRONMENT_ROLE_ACTIONS[role]


def credential_allows(role: CredentialRole | None, action: str) -> bool:
    return role is not None and action in CREDENTIAL_ROLE_ACTIONS[role]
