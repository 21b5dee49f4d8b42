"""Rotation: every source of change (builtin writes, the NotifyEnvironmentVariableSecretChange action, Event
Grid and CloudEvents deliveries, the polling reconciler, a read that finds a new version) becomes one durable
``secret_version_changed(store, name, version)``: a SecretEvent row written in the caller's transaction, so
it exists before the caller answers. The worker (``credflow.services.secrets.worker``) applies it.

Deduplication: an event naming a version is keyed by (store, name, version, reach), so a repeated delivery,
whatever its event id, is stored once; one without a version is keyed by its event id when it has one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Malformed, NotFound, RuleViolation
from credflow.domain.references import azure_vault_name, normalize_vault_url, vault_name_from_resource_id
from credflow.events.parsing import parse
from credflow.persistence.tables import (
    Connection,
    Credential,
    EnvironmentVariable,
    SecretEvent,
    SecretHead,
    SecretStore,
    new_id,
    utcnow,
)
from credflow.services.access import authz
from credflow.services.core import Actor, Core
from credflow.services.secrets import cache, event_keys
from credflow.services.secrets.connection_state import set_connections_version
from credflow.stores.base import split_field

ENQUEUED = "secret_event_enqueued"  # the in-process signal that wakes the worker
MAX_BODY_BYTES = 1_048_576  # Event Grid delivers at most 1 MB per request
KEEP_EVENTS_DAYS = 7


def _dedupe(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def secret_version_changed(core: Core, s: Session, store: SecretStore, name: str, version: str | None, *,
                           source: str, event_id: str | None = None, scope_user_id: str | None = None,
                           after: str | None = None) -> bool:
    """Record the internal event in ``s``; False when it is a duplicate. The worker wakes after commit."""
    base, _ = split_field(name.strip())
    reach = scope_user_id or "*"
    if version:
        # A reconciler's observation is keyed by the version it moved from, so a later move back is seen.
        key = _dedupe("v", store.id, base, version, reach, after or "")
    elif event_id:
        key = _dedupe("id", store.id, base, event_id, reach)
    else:
        key = _dedupe("n", new_id())
    if s.scalar(select(SecretEvent.id).where(SecretEvent.dedupe_key == key)) is not None:
        return False
    row = SecretEvent(dedupe_key=key, env_id=store.env_id, store_id=store.id, secret_name=base,
                      version=version, source=source, scope_user_id=scope_user_id)
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        return False  # the same event, stored by a concurrent delivery
    sa_event.listen(s, "after_commit", lambda _s: core.emit(ENQUEUED), once=True)
    return True


def match_stores(s: Session, env_id: str, vault: str) -> list[SecretStore]:
    """The stores of the environment a URL or an Azure vault resource id names (API.md, "Matching a vault")."""
    stores = s.scalars(select(SecretStore).where(SecretStore.env_id == env_id).order_by(SecretStore.id)).all()
    name = vault_name_from_resource_id(vault)
    if name is not None:
        return [st for st in stores if st.name.lower() == name or (
            st.vault_url.lower().startswith(("https://", "http://")) and azure_vault_name(st.vault_url) == name)]
    norm = normalize_vault_url(vault)
    return [st for st in stores if st.vault_url_norm == norm]


def notify(core: Core, actor: Actor, env_id: str, key_vault_url: str, secret_name: str) -> dict[str, Any]:
    """The seed's NotifyEnvironmentVariableSecretChange: a system administrator refreshes every connection
    using the secret, anyone else only their own."""
    name = secret_name.strip()
    if not name or not key_vault_url.strip():
        raise RuleViolation("KeyVaultUrl and SecretName may not be empty", code="missing_fields")
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "rotation.notify")
        stores = match_stores(s, env.id, key_vault_url)
        if not stores and authz.env_allows(role, "secret_store.read"):
            raise NotFound("no secret store of this environment is that vault", code="store_not_found")
        scope = None if authz.is_env_admin(role) else actor.id
        for store in stores:
            secret_version_changed(core, s, store, name, None, source="notify", scope_user_id=scope)
        record(s, actor=actor.label, action="rotation.notify", env_id=env.id, object_type="secret",
               object_id=stores[0].id if stores else None,
               detail={"name": name, "stores": [st.id for st in stores],
                       "reach": "environment" if scope is None else "own_connections"})
        return {"accepted": True}


def webhook_grant(core: Core, key: str | None, origin: str | None, rate: str | None) -> dict[str, str]:
    """The CloudEvents abuse-protection handshake (OPTIONS): the headers that grant delivery."""
    event_keys.authenticate_key(core, key)
    if not origin or not origin.strip():
        raise Malformed("the handshake needs a WebHook-Request-Origin header", code="missing_origin")
    return {"WebHook-Allowed-Origin": origin.strip(), "WebHook-Allowed-Rate": (rate or "").strip() or "*",
            "Allow": "POST, OPTIONS"}


def receive(core: Core, key: str | None, body: bytes, content_type: str, headers: Mapping[str, str]
            ) -> dict[str, Any]:
    """An Event Grid / CloudEvents delivery: stored durably before the answer, applied by the worker.
    A bad key is 401 and a body that is not events 400; anything else that fails is ours (5xx), so that
    Event Grid retries instead of dropping the event."""
    key_id, env_id = event_keys.authenticate_key(core, key)
    if len(body) > MAX_BODY_BYTES:
        raise Malformed("a delivery holds at most 1 MB", code="body_too_large")
    delivery = parse(body, content_type, headers)
    if delivery.validation_code is not None:
        return {"validationResponse": delivery.validation_code}
    accepted = duplicates = ignored = 0
    with core.db.transaction() as s:
        for ev in delivery.events:
            stores = next((found for v in ev.vaults if (found := match_stores(s, env_id, v))), [])
            if not ev.is_new_secret_version or not ev.name or not stores:
                ignored += 1
                continue
            for store in stores:
                if secret_version_changed(core, s, store, ev.name, ev.version, source=ev.schema, event_id=ev.id):
                    accepted += 1
                else:
                    duplicates += 1
        if accepted:
            record(s, actor=f"event_key:{key_id}", action="rotation.event", env_id=env_id, object_type="event_key",
                   object_id=key_id, detail={"accepted": accepted, "duplicates": duplicates, "ignored": ignored})
    return {"accepted": accepted, "duplicates": duplicates, "ignored": ignored}


def prune_events(core: Core) -> int:
    """Forget applied events older than a week: far past Event Grid's last retry (24 h), so a late repeat
    still finds its duplicate; anything later would change nothing anyway (heads move forward only)."""
    cutoff = utcnow() - timedelta(days=KEEP_EVENTS_DAYS)
    with core.db.transaction() as s:
        done = s.execute(delete(SecretEvent).where(SecretEvent.processed_at < cutoff)
                         .execution_options(synchronize_session=False))
        return int(done.rowcount or 0)  # type: ignore[attr-defined]


# --- a secret reference that changes moves the connections of the credentials using it -------------------
def install(core: Core) -> None:
    """Subscribe to the signals of other services (once per core)."""
    if core.state.setdefault("rotation_installed", False):
        return
    core.state["rotation_installed"] = True
    core.on("variable_changed", _on_variable_changed)


def _on_variable_changed(s: Session, var: EnvironmentVariable) -> None:
    if var.type != "secret" or not var.store_id or not var.secret_name:
        return
    version = var.secret_version
    if version is None:
        h = s.scalar(select(SecretHead).where(SecretHead.store_id == var.store_id,
                                              SecretHead.name == var.secret_name))
        version = h.current_version if h is not None else None
    creds = select(Credential.id).where(Credential.password_variable_id == var.id)
    set_connections_version(s, creds, version)


# --- what operators see -----------------------------------------------------------------------------------
def status(core: Core, actor: Actor, env_id: str) -> dict[str, Any]:
    """Pending events, every secret credflow follows with its freshness, and this process's vault calls."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "secret_store.read")
        stores = {st.id: st for st in s.scalars(select(SecretStore).where(SecretStore.env_id == env.id))}
        pending = s.scalar(select(func.count()).select_from(SecretEvent).where(
            SecretEvent.env_id == env.id, SecretEvent.processed_at.is_(None))) or 0
        heads = s.scalars(select(SecretHead).where(SecretHead.store_id.in_(list(stores)))
                          .order_by(SecretHead.store_id, SecretHead.name)).all() if stores else []
        used = _connections_per_secret(s, list(stores))
        state = cache.vault_state(core)
        return {
            "pending_events": pending,
            "secrets": [{"store": h.store_id, "store_name": stores[h.store_id].name, "name": h.name,
                         "current_version": h.current_version, "connections": used.get((h.store_id, h.name), 0),
                         **cache.freshness(h)} for h in heads],
            "stores": [{"store": sid, "name": st.name, "poll_interval_seconds": st.poll_interval_seconds,
                        "vault_reads": state.reads.get(sid, 0),
                        "version_checks": state.version_checks.get(sid, 0)} for sid, st in stores.items()],
        }


def _connections_per_secret(s: Session, store_ids: list[str]) -> dict[tuple[str, str], int]:
    if not store_ids:
        return {}
    rows = s.execute(
        select(EnvironmentVariable.store_id, EnvironmentVariable.secret_name, func.count(Connection.id))
        .join(Credential, Credential.password_variable_id == EnvironmentVariable.id)
        .join(Connection, Connection.credential_id == Credential.id)
        .where(EnvironmentVariable.store_id.in_(store_ids))
        .group_by(EnvironmentVariable.store_id, EnvironmentVariable.secret_name)).all()
    return {(r[0], r[1]): r[2] for r in rows}
