"""Rotation: where changes from outside come in. The seed's NotifyEnvironmentVariableSecretChange action and
the Event Grid / CloudEvents webhook (with its handshake) each turn what they are told into the durable
``outbox.secret_version_changed`` event, in one transaction, before they answer; the worker
(``credflow.services.secrets.worker``) applies it. Also here: the operators' view of pending events and of
every secret credflow follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Malformed, NotFound, RuleViolation, TooLarge
from credflow.domain.references import (
    azure_vault_name,
    check_printable,
    normalize_vault_url,
    vault_name_from_resource_id,
)
from credflow.events.parsing import parse
from credflow.persistence.tables import (
    Connection,
    Credential,
    EnvironmentVariable,
    SecretEvent,
    SecretHead,
    SecretStore,
)
from credflow.services.access import authz
from credflow.services.core import Actor, Core
from credflow.services.secrets import cache, connection_state, expiry, outbox
from credflow.stores.base import split_field

MAX_BODY_BYTES = 1_048_576  # Event Grid delivers at most 1 MB per request


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
    using the secret, anyone else only their own. ``connections`` says how many connections that is: those on a
    credential whose password follows the secret (unpinned), within the caller's reach. The worker moves them
    right after the answer, to the version the vault holds."""
    name = check_printable(secret_name, "SecretName", "malformed_secret_name")
    vault = check_printable(key_vault_url, "KeyVaultUrl", "malformed_vault_url")
    if not name or not vault:
        raise RuleViolation("KeyVaultUrl and SecretName may not be empty", code="missing_fields")
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "rotation.notify")
        stores = match_stores(s, env.id, vault)
        if not stores and authz.env_allows(role, "secret_store.read"):
            raise NotFound("no secret store of this environment is that vault", code="store_not_found")
        scope = None if authz.env_allows(role, "rotation.notify_all") else actor.id
        reached = 0
        for store in stores:
            outbox.secret_version_changed(core, s, store, name, None, source="notify", scope_user_id=scope)
            reached += _connections_following(s, store, name, scope)
        record(s, actor=actor.label, action="rotation.notify", env_id=env.id, object_type="secret",
               object_id=stores[0].id if stores else None,
               detail={"name": name, "stores": [st.id for st in stores], "connections": reached,
                       "reach": "environment" if scope is None else "own_connections"})
        return {"accepted": True, "connections": reached}


def _connections_following(s: Session, store: SecretStore, name: str, owner_id: str | None) -> int:
    """The connections a notice of secret ``name`` of ``store`` moves: on credentials whose password follows
    the secret (any ``#FIELD`` of it) unpinned; only ``owner_id``'s when given."""
    base, _ = split_field(name)
    names = connection_state.referenced_names(s, store.id, base)
    if not names:
        return 0
    q = select(func.count()).select_from(Connection).where(
        Connection.credential_id.in_(connection_state.credentials_using(store.id, names)))
    if owner_id is not None:
        q = q.where(Connection.owner_id == owner_id)
    return s.scalar(q) or 0


def webhook_grant(origin: str | None, rate: str | None) -> dict[str, str]:
    """The CloudEvents abuse-protection handshake (OPTIONS), for a caller whose event key was accepted: the
    headers that grant delivery."""
    if not origin or not origin.strip():
        raise Malformed("the handshake needs a WebHook-Request-Origin header", code="missing_origin")
    return {"WebHook-Allowed-Origin": origin.strip(), "WebHook-Allowed-Rate": (rate or "").strip() or "*",
            "Allow": "POST, OPTIONS"}


def receive(core: Core, sender: tuple[str, str], body: bytes, content_type: str, headers: Mapping[str, str]
            ) -> dict[str, Any]:
    """An Event Grid / CloudEvents delivery from ``sender``, the (key id, environment id) of the event key
    ``event_keys.authenticate_key`` accepted before the body was read: stored durably before the answer,
    applied by the worker. A body that is not events is 400, one over 1 MB 413; anything else that fails is
    ours (5xx), so that Event Grid retries instead of dropping the event."""
    key_id, env_id = sender
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge("a delivery holds at most 1 MB", code="body_too_large")
    delivery = parse(body, content_type, headers)
    if delivery.validation_code is not None:
        return {"validationResponse": delivery.validation_code}
    accepted = duplicates = ignored = 0
    with core.db.transaction() as s:
        for ev in delivery.events:
            stores = next((found for v in ev.vaults if (found := match_stores(s, env_id, v))), [])
            if ev.is_secret_expiry and ev.name and stores:  # news of a served version's exp: recorded at once
                when = expiry.from_event(ev.type, ev.expires)
                if sum(expiry.record(s, store, ev.name, ev.version, when) for store in stores):
                    accepted += 1
                else:
                    ignored += 1  # a version credflow does not serve
                continue
            if not ev.is_new_secret_version or not ev.name or not stores:
                ignored += 1
                continue
            for store in stores:
                if outbox.secret_version_changed(core, s, store, ev.name, ev.version, source=ev.schema,
                                                 event_id=ev.id):
                    accepted += 1
                else:
                    duplicates += 1
        if accepted:
            record(s, actor=f"event_key:{key_id}", action="rotation.event", env_id=env_id, object_type="event_key",
                   object_id=key_id, detail={"accepted": accepted, "duplicates": duplicates, "ignored": ignored})
    return {"accepted": accepted, "duplicates": duplicates, "ignored": ignored}


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
