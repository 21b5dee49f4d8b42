"""Secret stores: register, configure, grant use, and open them for reading; the builtin store's secrets."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, NotFound, RuleViolation
from credflow.domain.references import normalize_vault_url
from credflow.persistence.tables import BuiltinSecret, SecretStore, StoreAccess
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.access.principals import resolve_principal
from credflow.services.core import Actor, Core
from credflow.services.secrets import outbox
from credflow.stores.base import SecretNotFound, StoreConfig, StoreContext, split_config
from credflow.stores.base import SecretStore as StoreReader
from credflow.stores.egress import LINK_LOCAL_RANGES, literal_link_local

MAX_SECRET_BYTES = 25_000  # Azure Key Vault's limit, kept for every kind
_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$")


def _validate_config(core: Core, kind: str, config: dict[str, Any]) -> StoreConfig:
    plugin = core.registry.get(kind)
    if plugin is None:
        if kind in core.registry.not_viable:
            raise RuleViolation(f"store kind {kind!r} is not viable here: {core.registry.not_viable[kind]}",
                                code="store_kind_not_viable")
        raise RuleViolation(f"unknown store kind {kind!r}", code="unknown_store_kind", kinds=core.registry.kinds())
    try:
        return plugin.Config.model_validate(config)
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        raise RuleViolation(f"the config of a {kind} store is not valid", code="invalid_store_config",
                            errors=problems) from None


def _check_identity_and_addresses(core: Core, kind: str, model: StoreConfig, vault_url: str) -> None:
    """The rules a store's config keeps beyond its schema, on create (and on any change of a store): no
    link-local address, whatever the settings; the server's own identity only where the operator allows it."""
    addresses = {"vault_url": vault_url, **model.addresses()}
    for field, address in addresses.items():
        if literal_link_local(address):
            raise RuleViolation(f"the store's {field} is a link-local address ({LINK_LOCAL_RANGES}), where cloud "
                                "metadata services answer; credflow never connects to one",
                                code="link_local_address", field=field)
    ambient = model.ambient_identity()
    if ambient and not core.settings.allow_ambient_credentials:
        raise RuleViolation(f"this {kind} store names no credentials of its own, so it would use {ambient}. "
                            "credflow lends its own identity to stores only when the operator sets "
                            "CREDFLOW_ALLOW_AMBIENT_CREDENTIALS=true; otherwise give the store its own credentials",
                            code="ambient_credentials_off")


def create_store(core: Core, actor: Actor, env_id: str, name: str, kind: str, vault_url: str | None,
                 config: dict[str, Any]) -> dict[str, Any]:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.create")
        model = _validate_config(core, kind, config)
        if not vault_url:
            if kind != "builtin":
                raise RuleViolation("vault_url is required for this kind", code="missing_vault_url")
            vault_url = f"builtin://{env.name}/{name}"
        _check_identity_and_addresses(core, kind, model, vault_url)
        if s.scalar(select(SecretStore.id).where(SecretStore.env_id == env.id, SecretStore.name == name)):
            raise Conflict(f"a secret store named {name!r} exists", code="duplicate_name")
        public, full = split_config(model)  # the secret fields are write-only: sealed, never shown
        row = SecretStore(env_id=env.id, name=name, kind=kind, vault_url=vault_url,
                          vault_url_norm=normalize_vault_url(vault_url), config=public,
                          poll_interval_seconds=int(getattr(model, "poll_interval_seconds", 0) or 0),
                          created_by=actor.id)
        s.add(row)
        s.flush()
        row.secret_config = core.barrier.seal(s, json.dumps(full), f"store-config:{row.id}")
        s.add(StoreAccess(store_id=row.id, principal_id=actor.id, allowed=True))
        record(s, actor=actor.label, action="secret_store.create", env_id=env.id, object_type="secret_store",
               object_id=row.id, detail={"name": name, "kind": kind})
        return views.secret_store(row)


def find_store(s: Session, env_id: str, ref: str) -> SecretStore:
    row = lookup.row_in_env(s, SecretStore, env_id, ref)
    if row is None:
        raise NotFound(f"secret store {ref!r} not found in this environment", code="store_not_found")
    return row


def list_stores(core: Core, actor: Actor, env_id: str) -> list[dict[str, Any]]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.read")
        rows = s.scalars(select(SecretStore).where(SecretStore.env_id == env.id).order_by(SecretStore.id)).all()
        return [views.secret_store(r) for r in rows]


def page_stores(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's stores, searched by name, sorted by name, kind or creation."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.read")
        q = select(SecretStore).where(SecretStore.env_id == env.id)
        return lookup.page(s, q, listing, search=[SecretStore.name], key=SecretStore.id, view=views.secret_store,
                           sorts={"name": SecretStore.name, "kind": SecretStore.kind,
                                  "created": SecretStore.created_at})


def get_store(core: Core, actor: Actor, env_id: str, store_id: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.read")
        return views.secret_store(find_store(s, env.id, store_id))


def set_access(core: Core, actor: Actor, env_id: str, store_id: str, principal: str, allowed: bool
               ) -> dict[str, Any]:
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.admin")
        store = find_store(s, env.id, store_id)
        pid, ptype = resolve_principal(s, actor, env.id, principal)
        row = s.get(StoreAccess, (store.id, pid))
        if row is None:
            s.add(StoreAccess(store_id=store.id, principal_id=pid, allowed=allowed))
        else:
            row.allowed = allowed
        record(s, actor=actor.label, action="secret_store.access", env_id=env.id, object_type="secret_store",
               object_id=store.id, detail={"principal": pid, "principal_type": ptype, "allowed": allowed})
        return {"store": store.id, "principal": pid, "principal_type": ptype, "allowed": allowed}


# --- opening a store for reading -------------------------------------------------------------------------
def open_store(core: Core, s: Session, store: SecretStore) -> StoreReader:
    key = (store.id, store.secret_config or "")
    cached = core.open_stores.get(key)
    if cached is not None:
        return cached
    plugin = core.registry.get(store.kind)
    if plugin is None:
        raise RuleViolation(f"store kind {store.kind!r} is not available", code="store_kind_not_viable")
    full = json.loads(core.barrier.open(s, store.secret_config or "{}", f"store-config:{store.id}"))
    ctx = StoreContext(store_id=store.id, vault_url=store.vault_url, builtin=BuiltinBackend(core),
                       allow_ambient_credentials=core.settings.allow_ambient_credentials)
    reader = plugin.open(plugin.Config.from_stored(full), ctx)
    core.open_stores[key] = reader
    return reader


class BuiltinBackend:
    """The builtin store's versions, read from credflow's own database under the barrier."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def _row(self, s: Session, store_id: str, name: str, version: int | None) -> BuiltinSecret:
        q = select(BuiltinSecret).where(BuiltinSecret.store_id == store_id, BuiltinSecret.name == name)
        q = q.where(BuiltinSecret.version == version) if version is not None else q.order_by(
            BuiltinSecret.version.desc()).limit(1)
        row = s.scalar(q)
        if row is None or not row.enabled:
            raise SecretNotFound(f"secret {name!r} (version {version or 'latest'}) not found")
        return row

    def get(self, store_id: str, name: str, version: int | None) -> tuple[str, int]:
        with self.core.db.read() as s:
            row = self._row(s, store_id, name, version)
            return self.core.barrier.open(s, row.sealed_value, _aad(row)), row.version

    def current(self, store_id: str, name: str) -> int:
        with self.core.db.read() as s:
            return self._row(s, store_id, name, None).version


def _aad(row: BuiltinSecret) -> str:
    return f"builtin:{row.store_id}:{row.name}:{row.version}"


def put_secret(core: Core, actor: Actor, env_id: str, store_id: str, name: str, value: str) -> dict[str, Any]:
    if not _SECRET_NAME.match(name):
        raise RuleViolation("a secret name is 1-200 characters: letters, digits and - _ . /",
                            code="malformed_secret_name")
    if len(value.encode()) > MAX_SECRET_BYTES:
        raise RuleViolation(f"a secret value may hold at most {MAX_SECRET_BYTES} bytes", code="secret_too_large")
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret.write")
        store = find_store(s, env.id, store_id)
        if store.kind != "builtin":
            raise RuleViolation("only builtin stores take secret writes; write to the vault itself",
                                code="store_not_writable")
        s.execute(select(SecretStore.id).where(SecretStore.id == store.id).with_for_update())  # one writer numbers
        last = s.scalar(select(func.max(BuiltinSecret.version)).where(
            BuiltinSecret.store_id == store.id, BuiltinSecret.name == name)) or 0
        row = BuiltinSecret(store_id=store.id, name=name, version=last + 1, sealed_value="")
        row.sealed_value = core.barrier.seal(s, value, _aad(row))
        s.add(row)
        s.flush()
        record(s, actor=actor.label, action="secret.write", env_id=env.id, object_type="secret",
               object_id=store.id, detail={"name": name, "version": row.version})
        outbox.secret_version_changed(core, s, store, name, str(row.version), source="builtin")
        return {"name": name, "version": str(row.version), "created_at": views.ts(row.created_at)}


def list_secrets(core: Core, actor: Actor, env_id: str, store_id: str) -> list[dict[str, Any]]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.read")
        store = find_store(s, env.id, store_id)
        rows = s.execute(select(BuiltinSecret.name, func.max(BuiltinSecret.version))
                         .where(BuiltinSecret.store_id == store.id).group_by(BuiltinSecret.name)
                         .order_by(BuiltinSecret.name)).all()
        return [{"name": n, "version": str(v)} for n, v in rows]
