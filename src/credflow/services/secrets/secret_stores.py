"""Secret stores: register, configure, grant use, and open them for reading; the builtin store's secrets."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, NotFound, RuleViolation
from credflow.domain.references import check_printable, normalize_vault_url
from credflow.persistence.tables import (
    BuiltinSecret,
    CachedSecret,
    EnvironmentVariable,
    SecretHead,
    SecretStore,
    StoreAccess,
)
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.access.principals import resolve_principal
from credflow.services.core import Actor, Core
from credflow.services.secrets import cached_versions, outbox
from credflow.stores.base import (
    SecretNotFound,
    SecretValue,
    StoreConfig,
    StoreContext,
    config_fields,
    parse_rfc3339,
    split_config,
)
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
        kinds = core.registry.kinds()
        missing = f" (not installed here: {', '.join(sorted(core.registry.not_viable))})" \
            if core.registry.not_viable else ""
        raise RuleViolation(f"unknown store kind; the kinds are {', '.join(kinds)}{missing}",
                            code="unknown_store_kind", kinds=kinds, allowed=kinds)
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


def _check_vault_url(vault_url: str) -> tuple[str, str]:
    """The vault URL as kept and as compared (``normalize_vault_url``); 422 when it cannot be read as one."""
    return check_printable(vault_url, "vault_url", "malformed_vault_url"), normalize_vault_url(vault_url)


def _check_store_name(name: str) -> str:
    kept = check_printable(name, "a secret store's name", "malformed_name")
    if not kept:
        raise RuleViolation("a secret store needs a non-empty name", code="empty_name")
    return kept


def _unique_name(s: Session, env_id: str, name: str, except_id: str | None = None) -> None:
    other = s.scalar(select(SecretStore.id).where(SecretStore.env_id == env_id, SecretStore.name == name))
    if other is not None and other != except_id:
        raise Conflict(f"a secret store named {name!r} exists", code="duplicate_name")


def create_store(core: Core, actor: Actor, env_id: str, name: str, kind: str, vault_url: str | None,
                 config: dict[str, Any]) -> dict[str, Any]:
    name = _check_store_name(name)
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.create")
        model = _validate_config(core, kind, config)
        if not vault_url:
            if kind != "builtin":
                raise RuleViolation("vault_url is required for this kind", code="missing_vault_url")
            vault_url = f"builtin://{env.name}/{name}"
        vault_url, vault_url_norm = _check_vault_url(vault_url)
        _check_identity_and_addresses(core, kind, model, vault_url)
        _unique_name(s, env.id, name)
        public, full = split_config(model)  # the secret fields are write-only: sealed, never shown
        row = SecretStore(env_id=env.id, name=name, kind=kind, vault_url=vault_url, vault_url_norm=vault_url_norm,
                          config=public, poll_interval_seconds=_poll_interval(model), created_by=actor.id)
        s.add(row)
        s.flush()
        row.secret_config = core.barrier.seal(s, json.dumps(full), f"store-config:{row.id}")
        s.add(StoreAccess(store_id=row.id, principal_id=actor.id, allowed=True))
        if row.poll_interval_seconds:
            core.emit_on_commit(s, outbox.POLLS_CHANGED)  # polled from now, by every server process
        record(s, actor=actor.label, action="secret_store.create", env_id=env.id, object_type="secret_store",
               object_id=row.id, detail={"name": name, "kind": kind})
        return views.secret_store(row)


def _poll_interval(model: StoreConfig) -> int:
    return int(getattr(model, "poll_interval_seconds", 0) or 0)


def _stored_config(core: Core, s: Session, row: SecretStore) -> dict[str, Any]:
    """The whole config saved with a store, secret fields revealed and retired fields dropped."""
    full: dict[str, Any] = json.loads(core.barrier.open(s, row.secret_config or "{}", f"store-config:{row.id}"))
    plugin = core.registry.get(row.kind)
    retired = plugin.Config.retired_fields if plugin is not None else frozenset()
    return {k: v for k, v in full.items() if k not in retired}


def _merged(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``stored``: a field left out keeps its value, null clears it (back to its default), and a
    nested config (``approle``) is merged the same way."""
    out = dict(stored)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _kept_secrets(config: type[StoreConfig], stored: dict[str, Any], patch: dict[str, Any]) -> list[str]:
    """The secret fields (dotted: ``approle.secret_id``) that ``stored`` holds and ``patch`` leaves out: what a
    merge keeps."""

    def holds(data: Any, dotted: str) -> bool:
        for part in dotted.split("."):
            if not isinstance(data, dict) or data.get(part) is None:
                return False
            data = data[part]
        return True

    def mentions(data: Any, dotted: str) -> bool:
        for part in dotted.split("."):
            if not isinstance(data, dict) or part not in data:
                return False
            data = data[part]
            if data is None:  # cleared, itself or the nested config that holds it
                return True
        return True

    return [f.name for f in config_fields(config) if f.secret and holds(stored, f.name) and not mentions(patch, f.name)]


def update_store(core: Core, actor: Actor, env_id: str, store_ref: str, *, name: str | None = None,
                 vault_url: str | None = None, config: dict[str, Any] | None = None,
                 kind: str | None = None) -> dict[str, Any]:
    """Rename a store, move it, or change its config (its creator or a system administrator). The result passes
    every check a new store passes. A store that would connect elsewhere (its ``vault_url`` or an address in its
    config changes) does not keep its secret fields: they must be given again, so that a stored token is never
    sent to an address it was not written for."""
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "secret_store.read")
        row = find_store(s, env.id, store_ref)
        authz.require_store_owner(actor, role, row)
        if kind is not None and kind != row.kind:
            raise RuleViolation("a secret store's kind cannot change; register a new store of that kind",
                                code="store_kind_immutable")
        new_name = _check_store_name(name) if name is not None else row.name
        new_url, new_url_norm = _check_vault_url(vault_url) if vault_url is not None else (row.vault_url,
                                                                                           row.vault_url_norm)
        stored, patch = _stored_config(core, s, row), config or {}
        before = _validate_config(core, row.kind, stored)
        model = _validate_config(core, row.kind, _merged(stored, patch))
        _check_identity_and_addresses(core, row.kind, model, new_url)
        moved = sorted(f for f, a in {"vault_url": new_url, **model.addresses()}.items()
                       if a != {"vault_url": row.vault_url, **before.addresses()}.get(f))
        kept = _kept_secrets(type(model), stored, patch)
        if moved and kept:
            raise RuleViolation(f"the store would connect elsewhere ({', '.join(moved)}), so it does not keep its "
                                f"secret fields: give {', '.join(kept)} again", code="secret_fields_required",
                                fields=kept)
        _unique_name(s, env.id, new_name, except_id=row.id)
        public, full = split_config(model)
        changed = sorted(set(patch) | {k for k in set(row.config) | set(public) if row.config.get(k) != public.get(k)})
        detail = {"name": new_name, "previous_name": row.name if new_name != row.name else None,
                  "vault_url_changed": new_url != row.vault_url, "config_changed": changed}
        row.name, row.vault_url, row.vault_url_norm = new_name, new_url, new_url_norm
        if row.poll_interval_seconds or _poll_interval(model):
            core.emit_on_commit(s, outbox.POLLS_CHANGED)  # every server process polls at the new pace
        row.config, row.poll_interval_seconds = public, _poll_interval(model)
        row.secret_config = core.barrier.seal(s, json.dumps(full), f"store-config:{row.id}")
        if moved:  # values cached from where the store pointed before are not this vault's
            s.execute(delete(CachedSecret).where(CachedSecret.store_id == row.id))
        for failing in s.scalars(select(SecretHead.name).where(SecretHead.store_id == row.id,
                                                               SecretHead.error_code.is_not(None))).all():
            outbox.secret_version_changed(core, s, row, failing, None, source="store_update")  # ask again now
        record(s, actor=actor.label, action="secret_store.update", env_id=env.id, object_type="secret_store",
               object_id=row.id, detail=detail)
        view = views.secret_store(row)
    _forget_open(core, row.id)
    return view


def delete_store(core: Core, actor: Actor, env_id: str, store_ref: str) -> None:
    """Delete a store (its creator or a system administrator) with what credflow keeps of it: its access list,
    cached versions, pending events and, for a builtin store, its secrets. Refused (409 ``in_use``, naming them)
    while environment variables reference it: point them at another store first."""
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "secret_store.read")
        row = find_store(s, env.id, store_ref)
        authz.require_store_owner(actor, role, row)
        _refuse_in_use(s, row)
        secrets = s.scalar(select(func.count(func.distinct(BuiltinSecret.name)))
                           .where(BuiltinSecret.store_id == row.id)) or 0
        record(s, actor=actor.label, action="secret_store.delete", env_id=env.id, object_type="secret_store",
               object_id=row.id, detail={"name": row.name, "kind": row.kind, "builtin_secrets": secrets})
        s.delete(row)
        try:
            s.flush()
        except IntegrityError:  # a variable made since, in a transaction that committed first
            raise Conflict("environment variables reference this secret store", code="in_use") from None
    _forget_open(core, row.id)


MAX_DEPENDENTS = 100


def _refuse_in_use(s: Session, row: SecretStore) -> None:
    q = select(EnvironmentVariable).where(EnvironmentVariable.store_id == row.id)
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    if total:
        first = s.scalars(q.order_by(EnvironmentVariable.schema_name).limit(MAX_DEPENDENTS)).all()
        raise Conflict(f"{total} environment variable(s) reference this secret store; point them at another store "
                       "or delete them first", code="in_use",
                       dependents={"environment_variables": [{"id": v.id, "schema_name": v.schema_name}
                                                             for v in first],
                                   "counts": {"environment_variables": total}})


def _forget_open(core: Core, store_id: str) -> None:
    """Drop this process's opened readers of the store (they hold its old config)."""
    for key in [k for k in core.open_stores if k[0] == store_id]:
        core.open_stores.pop(key, None)


def find_store(s: Session, env_id: str, ref: str) -> SecretStore:
    row = lookup.row_in_env(s, SecretStore, env_id, ref)
    if row is None:
        raise NotFound(f"secret store {ref!r} not found in this environment", code="store_not_found")
    return row


def list_stores(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                ) -> dict[str, Any]:
    """One page of the environment's secret stores, in the order they were registered."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.read")
        return lookup.seek(s, select(SecretStore).where(SecretStore.env_id == env.id), SecretStore.id,
                           limit=limit, cursor=cursor, view=views.secret_store)


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
        value, got, _, _ = self.get_dated(store_id, name, version)
        return value, got

    def get_dated(self, store_id: str, name: str, version: int | None
                  ) -> tuple[str, int, datetime | None, datetime | None]:
        with self.core.db.read() as s:
            row = self._row(s, store_id, name, version)
            return self.core.barrier.open(s, row.sealed_value, _aad(row)), row.version, row.created_at, row.expires_at

    def current(self, store_id: str, name: str) -> int:
        with self.core.db.read() as s:
            return self._row(s, store_id, name, None).version


def _aad(row: BuiltinSecret) -> str:
    return f"builtin:{row.store_id}:{row.name}:{row.version}"


def put_secret(core: Core, actor: Actor, env_id: str, store_id: str, name: str, value: str,
               expires_at: str | None = None) -> dict[str, Any]:
    """Write a new version of a builtin secret; ``expires_at`` (RFC 3339) is when it stops being good."""
    expires = _expiry(expires_at)
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
        row = BuiltinSecret(store_id=store.id, name=name, version=last + 1, sealed_value="", expires_at=expires)
        row.sealed_value = core.barrier.seal(s, value, _aad(row))
        s.add(row)
        s.flush()
        record(s, actor=actor.label, action="secret.write", env_id=env.id, object_type="secret",
               object_id=store.id, detail={"name": name, "version": row.version})
        # The version is known here: cached now, the rotation worker and runs never read it back.
        cached_versions.keep(core, s, store.id, name, SecretValue(value, str(row.version), row.created_at, expires))
        outbox.secret_version_changed(core, s, store, name, str(row.version), source="builtin")
        return {"name": name, "version": str(row.version), "created_at": views.ts(row.created_at),
                "expires_at": views.ts(expires)}


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    parsed = parse_rfc3339(text)
    if parsed is None:
        raise RuleViolation("expires_at is an RFC 3339 timestamp with a time and an offset, e.g. "
                            "2027-01-31T00:00:00Z", code="invalid_expires_at", field="expires_at")
    return parsed


def list_secrets(core: Core, actor: Actor, env_id: str, store_id: str, limit: int = 50,
                 cursor: str | None = None) -> dict[str, Any]:
    """One page of a builtin store's secrets by name (the cursor is the last name given), each at its latest
    version; along the (store, name, version) index."""
    limit = min(max(1, limit), lookup.API_MAX_PAGE)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.read")
        store = find_store(s, env.id, store_id)
        q = select(BuiltinSecret.name, func.max(BuiltinSecret.version)).where(BuiltinSecret.store_id == store.id)
        if cursor is not None:
            q = q.where(BuiltinSecret.name > cursor)
        rows = s.execute(q.group_by(BuiltinSecret.name).order_by(BuiltinSecret.name).limit(limit + 1)).all()
        items = [{"name": n, "version": str(v)} for n, v in rows[:limit]]
        return {"items": items, "next_cursor": items[-1]["name"] if len(rows) > limit else None}
