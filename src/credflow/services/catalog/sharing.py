"""Sharing a credential: grant, change and revoke roles for users and teams, and what follows from it.

The seed's rules: a ``user_share`` grants only ``user`` or ``user_share``; sharing a credential grants read on
its environment variables, and revoking the share does not take that read back. Beyond the seed, revocation
reaches connections: a connection whose owner may no longer use its credential turns ``access_revoked`` and
returns to ``connected`` when access comes back (``access.connection_access.refresh_access``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Forbidden, Malformed, NotFound, RuleViolation
from credflow.domain.roles import GRANTABLE, CredentialRole, credential_role_named
from credflow.persistence.tables import (
    CredentialShare,
    Environment,
    Team,
    User,
    VariableGrant,
)
from credflow.services import views
from credflow.services.access import authz
from credflow.services.access.connection_access import refresh_access
from credflow.services.access.principals import resolve_principal
from credflow.services.core import Actor, Core

SHAREABLE = (CredentialRole.CO_OWNER, CredentialRole.USER, CredentialRole.USER_SHARE)


def _require_grantable(mine: CredentialRole, role: CredentialRole, doing: str) -> None:
    if role not in GRANTABLE[mine]:
        allowed = ", ".join(sorted(r.value for r in GRANTABLE[mine])) or "nothing"
        raise Forbidden(f"as {mine.value} you may {doing} only these roles: {allowed}", code="role_not_grantable")


def _principal_view(s: Session, principal_id: str, principal_type: str, role: str) -> dict[str, Any]:
    out: dict[str, Any] = {"principal": principal_id, "principal_type": principal_type, "role": role}
    if principal_type == "team":
        team = s.get(Team, principal_id)
        out["name"] = team.name if team else None
    else:
        user = s.get(User, principal_id)
        out.update(name=user.name if user else None, email=user.email if user else None)
    return out


def _share_view(s: Session, share: CredentialShare) -> dict[str, Any]:
    return {**_principal_view(s, share.principal_id, share.principal_type, share.role),
            "granted_by": share.granted_by, "created_at": views.ts(share.created_at)}


def list_shares(core: Core, actor: Actor, env_id: str, cred_id: str, limit: int = 50,
                cursor: str | None = None) -> dict[str, Any]:
    """The owner first (role ``owner``), then every share in the order it was granted: one page of ``limit``,
    read in the database along (granted at, principal) from the share the cursor names (a principal)."""
    limit = min(max(1, limit), 500)
    with core.db.read() as s:
        cred, _ = authz.credential(s, actor, env_id, cred_id, "view")
        items: list[dict[str, Any]] = []
        q = select(CredentialShare).where(CredentialShare.credential_id == cred.id)
        if not cursor:
            items.append({**_principal_view(s, cred.owner_id, "user", CredentialRole.OWNER.value),
                          "granted_by": None, "created_at": views.ts(cred.created_at)})
        elif cursor != cred.owner_id:
            after = s.get(CredentialShare, (cred.id, cursor))
            if after is None:
                raise Malformed("the cursor does not name a principal of this list", code="malformed_cursor")
            q = q.where(or_(CredentialShare.created_at > after.created_at,
                            and_(CredentialShare.created_at == after.created_at,
                                 CredentialShare.principal_id > after.principal_id)))
        shares = s.scalars(q.order_by(CredentialShare.created_at, CredentialShare.principal_id)
                           .limit(limit + 1 - len(items))).all()
        items += [_share_view(s, sh) for sh in shares]
    chunk = items[:limit]
    return {"items": chunk, "next_cursor": chunk[-1]["principal"] if len(items) > limit else None}


def _in_environment(s: Session, user_id: str, env: Environment) -> bool:
    return authz.env_role(s, Actor(kind="user", id=user_id, org_id=env.org_id), env.id) is not None


def share(core: Core, actor: Actor, env_id: str, cred_id: str, principal: str, role: str) -> dict[str, Any]:
    """Grant ``role`` to a user or team, or change the role it holds."""
    wanted = credential_role_named(role, SHAREABLE)
    with core.db.transaction() as s:
        cred, mine = authz.credential(s, actor, env_id, cred_id, "share")
        _require_grantable(mine, wanted, "grant")
        env = s.get(Environment, cred.env_id)
        assert env is not None
        pid, ptype = resolve_principal(s, actor, env.id, principal)
        if pid == cred.owner_id:
            raise RuleViolation("the owner's own role cannot be changed", code="owner_role_fixed")
        if ptype == "user" and not _in_environment(s, pid, env):
            raise RuleViolation("the user has no role in this credential's environment",
                                code="principal_not_in_environment")
        row = s.get(CredentialShare, (cred.id, pid))
        previous = row.role if row is not None else None
        if row is None:
            row = CredentialShare(credential_id=cred.id, principal_id=pid, principal_type=ptype,
                                  role=wanted.value, granted_by=actor.id)
            s.add(row)
        else:
            _require_grantable(mine, CredentialRole(row.role), "change")
            row.role, row.granted_by = wanted.value, actor.id
        for var_id in (cred.username_variable_id, cred.password_variable_id):
            if s.get(VariableGrant, (var_id, pid)) is None:
                s.add(VariableGrant(variable_id=var_id, principal_id=pid))
        s.flush()
        restored = refresh_access(s, cred.id)
        record(s, actor=actor.label, action="credential.share", env_id=env.id, object_type="credential",
               object_id=cred.id, detail={"principal": pid, "principal_type": ptype, "role": wanted.value,
                                          "previous_role": previous, "connections_changed": restored})
        return _share_view(s, row)


def unshare(core: Core, actor: Actor, env_id: str, cred_id: str, principal: str) -> None:
    """Revoke a share. The environment variables stay readable; connections that lose access turn
    ``access_revoked``."""
    with core.db.transaction() as s:
        cred, mine = authz.credential(s, actor, env_id, cred_id, "share")
        try:
            pid, _ = resolve_principal(s, actor, cred.env_id, principal)
        except NotFound:
            pid = principal  # a share may outlive what resolves its principal; its id still names it
        if pid == cred.owner_id:
            raise RuleViolation("the owner's own role cannot be changed", code="owner_role_fixed")
        row = s.get(CredentialShare, (cred.id, pid))
        if row is None:
            raise NotFound(f"principal {principal!r} holds no share of this credential", code="share_not_found")
        _require_grantable(mine, CredentialRole(row.role), "revoke")
        detail = {"principal": pid, "principal_type": row.principal_type, "role": row.role}
        s.delete(row)
        s.flush()
        revoked = refresh_access(s, cred.id)
        record(s, actor=actor.label, action="credential.unshare", env_id=cred.env_id, object_type="credential",
               object_id=cred.id, detail={**detail, "connections_changed": revoked})
