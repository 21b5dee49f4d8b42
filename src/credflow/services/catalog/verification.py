"""A credential's verification, as its owners set it and ask for it: ``verification: null | {desktop_flow,
connection}`` on create and PATCH, and ``POST .../credentials/{id}/verify``. What a verification does when a new
version arrives is ``credflow.services.secrets.verification``.

Only those who may edit the credential (owners, co-owners, system administrators) set or run it; the connection
must use this credential and be one the caller may run flows on, and the credential must allow the flow.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, RuleViolation
from credflow.persistence.tables import Connection, Credential, DesktopFlow, EnvironmentVariable, SecretHead
from credflow.services import lookup
from credflow.services.access import authz
from credflow.services.core import Actor, Core
from credflow.services.secrets import verification


def configure(s: Session, actor: Actor, cred: Credential, spec: Any) -> None:
    """Set (a mapping ``{desktop_flow, connection}``) or clear (None) the verification of ``cred``, which the
    caller may edit. The connections stay on the version they have now, which becomes the verified one."""
    if spec is None:
        cred.verification_desktop_flow_id = cred.verification_connection_id = None
        cred.verification_status = cred.verification_detail = cred.verification_version = None
        cred.verification_run_id = cred.verification_checked_at = cred.verified_version = None
        record(s, actor=actor.label, action="credential.verification_set", env_id=cred.env_id,
               object_type="credential", object_id=cred.id, detail={"verification": None})
        return
    if not isinstance(spec, dict) or set(spec) != {"desktop_flow", "connection"} or not all(
            isinstance(v, str) and v for v in spec.values()):
        raise RuleViolation("verification is null or {desktop_flow, connection}, each an id or a name",
                            code="invalid_verification", field="verification")
    flow = lookup.find_in_env(s, DesktopFlow, cred.env_id, spec["desktop_flow"], "desktop flow",
                              "desktop_flow_not_found")
    conn = lookup.find_in_env(s, Connection, cred.env_id, spec["connection"], "connection", "connection_not_found")
    authz.require_connection_use(s, actor.id, conn)
    if conn.credential_id != cred.id:
        raise RuleViolation(f"connection {conn.name!r} does not use credential {cred.name!r}; a verification runs "
                            "on one of the credential's own connections", code="verification_connection_mismatch",
                            connection=conn.id)
    authz.require_flow_allowed(cred, flow)
    if (cred.verification_desktop_flow_id, cred.verification_connection_id) != (flow.id, conn.id):
        cred.verification_desktop_flow_id, cred.verification_connection_id = flow.id, conn.id
        cred.verification_status = cred.verification_detail = cred.verification_version = None
        cred.verification_run_id = cred.verification_checked_at = None
    if cred.verified_version is None:
        cred.verified_version = _head(s, cred) or conn.secret_version
    record(s, actor=actor.label, action="credential.verification_set", env_id=cred.env_id,
           object_type="credential", object_id=cred.id,
           detail={"verification": {"desktop_flow": flow.id, "connection": conn.id},
                   "verified_version": cred.verified_version})


def _head(s: Session, cred: Credential) -> str | None:
    var = s.get(EnvironmentVariable, cred.password_variable_id)
    if var is None or var.store_id is None or var.secret_name is None:
        return None
    return s.scalar(select(SecretHead.current_version).where(SecretHead.store_id == var.store_id,
                                                             SecretHead.name == var.secret_name))


def verify(core: Core, actor: Actor, env_id: str, cred_id: str) -> dict[str, Any]:
    """Run the verification now with the newest version credflow holds of the password (again, when it failed
    or passed already). The answer is the verification, pending, with its run."""
    with core.db.transaction() as s:
        cred, _ = authz.credential(s, actor, env_id, cred_id, "edit")
        if not verification.has_verification(cred):
            raise Conflict(f"credential {cred.name!r} has no verification; set one with PATCH first",
                           code="no_verification")
        version = _head(s, cred) or cred.verified_version
        if version is None:
            raise Conflict("credflow holds no version of the credential's password yet", code="no_version")
        verification.start(core, s, cred, version)
        record(s, actor=actor.label, action="credential.verify", env_id=cred.env_id, object_type="credential",
               object_id=cred.id, detail={"version": version, "run": cred.verification_run_id})
        out = verification.view(cred)
        assert out is not None
        return out
