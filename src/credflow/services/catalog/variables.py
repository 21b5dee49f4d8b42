"""Environment variables: text values, and secret references to a vault secret."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, Forbidden, NotFound, RuleViolation
from credflow.domain.references import SecretReference, azure_vault_name, parse_reference
from credflow.domain.roles import EnvironmentRole
from credflow.persistence.tables import EnvironmentVariable, SecretStore, utcnow
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.catalog import dependencies
from credflow.services.catalog.solutions import attach_to_solution
from credflow.services.core import Actor, Core
from credflow.services.secrets import cache, connection_state
from credflow.services.secrets.secret_stores import find_store
from credflow.stores.base import StoreError

_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
MAX_TEXT_VALUE = 25_000


def _store_for(s: Session, env_id: str, ref: SecretReference) -> SecretStore:
    if ref.store is not None:
        return find_store(s, env_id, ref.store)
    vault = (ref.vault or "").lower()
    stores = s.scalars(select(SecretStore).where(SecretStore.env_id == env_id)).all()
    matches = [st for st in stores if st.name.lower() == vault or azure_vault_name(st.vault_url) == vault]
    if not matches:
        raise NotFound(f"no secret store of this environment is the vault {ref.vault!r}", code="store_not_found")
    if len(matches) > 1:
        raise RuleViolation(f"several stores match the vault {ref.vault!r}; name the store instead",
                            code="ambiguous_store")
    return matches[0]


def _check_readable(core: Core, s: Session, actor: Actor, role: EnvironmentRole, store: SecretStore,
                    ref: SecretReference) -> None:
    authz.require_store_use(s, actor, store, role)
    try:
        cache.fetch(core, s, store, ref.name, ref.version)
    except StoreError as exc:
        raise RuleViolation(f"the secret {ref.name!r} cannot be read from store {store.name!r}: {exc}",
                            code="secret_unreadable", reason=exc.code) from None


def find_variable(s: Session, env_id: str, ref: str) -> EnvironmentVariable:
    return lookup.find_in_env(s, EnvironmentVariable, env_id, ref, "environment variable", "variable_not_found",
                              EnvironmentVariable.schema_name)


def _view(s: Session, var: EnvironmentVariable) -> dict[str, Any]:
    store = s.get(SecretStore, var.store_id) if var.store_id else None
    return views.variable(var, store.name if store else None)


def create_variable(core: Core, actor: Actor, env_id: str, schema_name: str, display_name: str | None,
                    type_: str, value: str | None, secret_reference: Any, solution: str | None = None
                    ) -> dict[str, Any]:
    if not _SCHEMA_NAME.match(schema_name or ""):
        raise RuleViolation("schema_name is a letter then up to 99 letters, digits or _",
                            code="malformed_schema_name")
    if type_ not in ("text", "secret"):
        raise RuleViolation("type is text or secret", code="unknown_variable_type", allowed=["text", "secret"])
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "variable.create")
        if s.scalar(select(EnvironmentVariable.id).where(EnvironmentVariable.env_id == env.id,
                                                         EnvironmentVariable.schema_name == schema_name)):
            raise Conflict(f"an environment variable {schema_name!r} exists", code="duplicate_name")
        var = EnvironmentVariable(env_id=env.id, schema_name=schema_name, display_name=display_name or schema_name,
                                  type=type_, created_by=actor.id, owner_id=actor.id)
        if type_ == "text":
            if secret_reference is not None:
                raise RuleViolation("a text variable carries value, not secret_reference", code="wrong_fields")
            set_text(var, value)
        else:
            if value is not None:
                raise RuleViolation("a secret variable carries secret_reference, never a value", code="wrong_fields")
            set_reference(core, s, actor, role, env.id, var, secret_reference)
        s.add(var)
        s.flush()
        record(s, actor=actor.label, action="variable.create", env_id=env.id, object_type="environment_variable",
               object_id=var.id, detail={"schema_name": schema_name, "type": type_})
        if solution:
            attach_to_solution(s, env.id, solution, "environment_variable", var.id)
        return _view(s, var)


def set_text(var: EnvironmentVariable, value: str | None) -> None:
    if not isinstance(value, str):
        raise RuleViolation("a text variable needs a string value", code="missing_value")
    if len(value) > MAX_TEXT_VALUE:
        raise RuleViolation("the value is too long", code="value_too_large")
    var.value = value


def set_reference(core: Core, s: Session, actor: Actor, role: EnvironmentRole, env_id: str,
                  var: EnvironmentVariable, raw: Any) -> None:
    ref = parse_reference(raw)
    store = _store_for(s, env_id, ref)
    _check_readable(core, s, actor, role, store, ref)
    var.store_id, var.secret_name, var.secret_version = store.id, ref.name, ref.version


def list_variables(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                   ) -> dict[str, Any]:
    """One page of the variables the caller sees, in the order they were made."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        q = select(EnvironmentVariable).where(EnvironmentVariable.env_id == env.id,
                                              authz.visible_variables_clause(s, actor, role))
        return lookup.seek(s, q, EnvironmentVariable.id, limit=limit, cursor=cursor, view=lambda v: _view(s, v))


def page_variables(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the variables the caller sees, searched by schema or display name, sorted by either, by type
    or by creation."""
    with core.db.read() as s:
        env, role = authz.environment(s, actor, env_id)
        q = select(EnvironmentVariable).where(EnvironmentVariable.env_id == env.id,
                                              authz.visible_variables_clause(s, actor, role))
        return lookup.page(s, q, listing, search=[EnvironmentVariable.schema_name, EnvironmentVariable.display_name],
                           key=EnvironmentVariable.id, view=lambda v: _view(s, v),
                           sorts={"name": EnvironmentVariable.schema_name,
                                  "display_name": EnvironmentVariable.display_name,
                                  "type": EnvironmentVariable.type, "created": EnvironmentVariable.created_at})


def get_variable(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        var, _ = authz.variable(s, actor, env_id, ref)
        return _view(s, var)


def update_variable(core: Core, actor: Actor, env_id: str, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
    with core.db.transaction() as s:
        var, role = authz.variable(s, actor, env_id, ref)
        if not authz.env_allows(role, "variable.update"):
            raise Forbidden("only makers and administrators edit environment variables")
        authz.require_owner(actor, role, var.owner_id, "environment variable")
        if "display_name" in changes:
            if not changes["display_name"]:
                raise RuleViolation("display_name may not be empty", code="empty_name")
            var.display_name = changes["display_name"]
        if "value" in changes:
            if var.type != "text":
                raise RuleViolation("a secret variable has no value; change its secret_reference",
                                    code="wrong_fields")
            set_text(var, changes["value"])
        if "secret_reference" in changes:
            if var.type != "secret":
                raise RuleViolation("a text variable has no secret_reference", code="wrong_fields")
            set_reference(core, s, actor, role, var.env_id, var, changes["secret_reference"])
            connection_state.follow_reference(s, var)  # its connections move in this same transaction
        var.updated_at = utcnow()
        record(s, actor=actor.label, action="variable.update", env_id=var.env_id,
               object_type="environment_variable", object_id=var.id, detail={"fields": sorted(changes)})
        return _view(s, var)


def delete_variable(core: Core, actor: Actor, env_id: str, ref: str) -> None:
    with core.db.transaction() as s:
        var, role = authz.variable(s, actor, env_id, ref)
        if not authz.env_allows(role, "variable.delete"):
            raise Forbidden("only makers and administrators delete environment variables")
        authz.require_owner(actor, role, var.owner_id, "environment variable")
        deps = dependencies.of_variable(s, var)
        if deps["credentials"]:
            raise Conflict("credentials use this environment variable", code="in_use", dependents=deps)
        record(s, actor=actor.label, action="variable.delete", env_id=var.env_id,
               object_type="environment_variable", object_id=var.id, detail={"schema_name": var.schema_name})
        s.delete(var)
