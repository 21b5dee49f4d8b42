"""How each entity is shown to callers. Nothing secret is ever in a view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from credflow.persistence import tables as t


def ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def environment(env: t.Environment) -> dict[str, Any]:
    return {"id": env.id, "name": env.name, "organization": env.org_id, "created_at": ts(env.created_at)}


def user(u: t.User, roles: dict[str, str]) -> dict[str, Any]:
    return {"id": u.id, "name": u.name, "email": u.email, "environment_roles": roles,
            "organization_admin": bool(u.organization_admin), "disabled": bool(u.disabled),
            "removed_at": ts(u.removed_at), "created_at": ts(u.created_at)}


def secret_store(s: t.SecretStore) -> dict[str, Any]:
    """The store with its public config; its secret fields are write-only and never leave."""
    config = dict(s.config)
    if s.kind != "builtin":
        config["poll_interval_seconds"] = s.poll_interval_seconds
    return {"id": s.id, "name": s.name, "kind": s.kind, "vault_url": s.vault_url, "config": config,
            "environment": s.env_id, "created_at": ts(s.created_at)}


def variable(v: t.EnvironmentVariable, store_name: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": v.id, "schema_name": v.schema_name, "display_name": v.display_name,
                           "type": v.type, "environment": v.env_id, "owner": v.owner_id,
                           "created_at": ts(v.created_at),
                           "updated_at": ts(v.updated_at)}
    if v.type == "text":
        out["value"] = v.value
    else:
        out["secret_reference"] = {"store": v.store_id, "store_name": store_name, "name": v.secret_name,
                                   "version": v.secret_version}
    return out


def verification_of(c: t.Credential) -> dict[str, Any] | None:
    """A credential's verification and its state (``credflow.services.secrets.verification``), or None."""
    if c.verification_connection_id is None or c.verification_desktop_flow_id is None:
        return None
    return {"desktop_flow": c.verification_desktop_flow_id, "connection": c.verification_connection_id,
            "status": c.verification_status, "detail": c.verification_detail,
            "checked_at": ts(c.verification_checked_at), "version": c.verification_version,
            "verified_version": c.verified_version, "run": c.verification_run_id}


def credential(c: t.Credential, my_role: str | None) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "description": c.description,
            "username_variable": c.username_variable_id, "password_variable": c.password_variable_id,
            "owner": c.owner_id, "my_role": my_role, "status": c.status, "environment": c.env_id,
            "max_concurrent_runs": c.max_concurrent_runs,
            "allowed_desktop_flows": c.allowed_desktop_flows, "max_age_days": c.max_age_days,
            "verification": verification_of(c),
            "created_at": ts(c.created_at), "updated_at": ts(c.updated_at)}
