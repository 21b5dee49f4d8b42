"""The prerequisite report of a secret store: the seed's prerequisites, checked, each with its fix."""

from __future__ import annotations

from typing import Any

from credflow.domain.errors import DomainError
from credflow.persistence.tables import Organization, SecretStore
from credflow.services.access import authz
from credflow.services.core import Actor, Core
from credflow.services.secrets.secret_stores import find_store, open_store
from credflow.stores.base import CheckResult, StoreError

NOT_APPLICABLE = "does not apply to a {kind} store"


def _vault_checks(core: Core, s: Any, store: SecretStore) -> list[CheckResult]:
    if store.kind == "builtin":
        return [CheckResult("reachable", True, "the builtin store is part of credflow"),
                CheckResult("service_can_read", True, "credflow reads its own store under the barrier")]
    not_viable = core.registry.not_viable.get(store.kind)
    if not_viable is not None:  # e.g. the vault's SDK is not installed: say how to install it
        return [CheckResult("reachable", False, f"credflow cannot open {store.kind} stores here: {not_viable.reason}"),
                CheckResult("service_can_read", False, "not checked: the store cannot be opened")]
    try:
        reader = open_store(core, s, store)
    except (DomainError, StoreError, ValueError) as exc:
        return [CheckResult("reachable", False, f"the store cannot be opened ({type(exc).__name__}); "
                            "check its kind and config"),
                CheckResult("service_can_read", False, "not checked: the store cannot be opened")]
    checks = getattr(reader, "checks", None)
    if checks is None:
        return [CheckResult("reachable", True, NOT_APPLICABLE.format(kind=store.kind)),
                CheckResult("service_can_read", True, NOT_APPLICABLE.format(kind=store.kind))]
    return list(checks())


def _same_tenant(s: Any, store: SecretStore, org_id: str) -> CheckResult:
    if store.kind != "azure-keyvault":
        return CheckResult("same_tenant", True, NOT_APPLICABLE.format(kind=store.kind))
    org = s.get(Organization, org_id)
    mine = (org.tenant_id or "").lower() if org else ""
    theirs = str(store.config.get("tenant_id", "")).lower()
    if not mine:
        return CheckResult("same_tenant", False, "the organization has no tenant id; set CREDFLOW_TENANT_ID to "
                           "the Microsoft Entra tenant of this credflow so vaults can be checked against it")
    if mine != theirs:
        return CheckResult("same_tenant", False, f"the vault's tenant {theirs} is not the organization's tenant "
                           f"{mine}; credflow and the vault must be on the same tenant")
    return CheckResult("same_tenant", True, f"the vault and the organization are both on tenant {mine}")


def check_store(core: Core, actor: Actor, env_id: str, store_ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, role = authz.require_env(s, actor, env_id, "secret_store.read")
        store = find_store(s, env.id, store_ref)
        may_use = authz.may_use_store(s, actor.id, store, role)
        results = [
            *_vault_checks(core, s, store),
            CheckResult("caller_may_use", may_use,
                        "you may reference this store's secrets" if may_use else
                        "you may not reference this store's secrets; a system administrator can allow you with "
                        f"POST .../secret-stores/{store.name}/access"),
            _same_tenant(s, store, env.org_id),
        ]
        return {"store": store.id, "ok": all(r.ok for r in results),
                "checks": [{"check": r.check, "ok": r.ok, "detail": r.detail} for r in results]}
