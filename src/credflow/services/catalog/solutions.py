"""Solutions: named, versioned sets of components that move between environments.

A component may need others: a credential its two environment variables, a connection reference the credential
of its connection, a cloud flow its desktop flows and connection references. Adding a component pulls in what it
needs unless another solution already holds it; then the export names that solution as a dependency.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, NotFound, RuleViolation
from credflow.domain.roles import EnvironmentRole
from credflow.persistence.tables import (
    CloudFlow,
    Connection,
    ConnectionReference,
    Credential,
    DesktopFlow,
    EnvironmentVariable,
    SecretStore,
    Solution,
    SolutionComponent,
)
from credflow.services import lookup, views
from credflow.services.access import authz
from credflow.services.core import Actor, Core
from credflow.solutions import manifest as m
from credflow.solutions.package import pack

Row = EnvironmentVariable | Credential | DesktopFlow | ConnectionReference | CloudFlow
TABLES: dict[str, type[Row]] = {
    "environment_variable": EnvironmentVariable, "credential": Credential, "desktop_flow": DesktopFlow,
    "connection_reference": ConnectionReference, "cloud_flow": CloudFlow,
}
ACTION_KEYS = ("desktop_flow", "connection_reference")  # what a cloud flow action names


def find_solution(s: Session, env_id: str, ref: str) -> Solution:
    return lookup.find_in_env(s, Solution, env_id, ref, "solution", "solution_not_found", Solution.unique_name)


def attach_to_solution(s: Session, env_id: str, solution: str, component_type: str, component_id: str) -> None:
    sol = find_solution(s, env_id, solution)
    if s.get(SolutionComponent, (sol.id, component_type, component_id)) is None:
        s.add(SolutionComponent(solution_id=sol.id, component_type=component_type, component_id=component_id))


# --- components -----------------------------------------------------------------------------------------------
def name_of(row: Row) -> str:
    return row.schema_name if isinstance(row, EnvironmentVariable) else row.name


def _get(s: Session, type_: str, component_id: str) -> Row | None:
    return cast("Row | None", s.get(TABLES[type_], component_id))


def _name_column(table: Any) -> Any:
    return table.schema_name if table is EnvironmentVariable else table.name


def by_name(s: Session, env_id: str, type_: str, name: str) -> Row | None:
    table: Any = TABLES[type_]
    return cast("Row | None", s.scalar(select(table).where(table.env_id == env_id, _name_column(table) == name)))


def find_component(s: Session, env_id: str, type_: str, ref: str) -> Row | None:
    table = TABLES[type_]
    return lookup.row_in_env(s, table, env_id, ref, _name_column(table))


def requires(s: Session, env_id: str, row: Row) -> list[tuple[str, Row]]:
    """The components ``row`` cannot work without."""
    out: list[tuple[str, Row | None]] = []
    if isinstance(row, Credential):
        out = [("environment_variable", s.get(EnvironmentVariable, row.username_variable_id)),
               ("environment_variable", s.get(EnvironmentVariable, row.password_variable_id))]
    elif isinstance(row, ConnectionReference) and row.connection_id:
        conn = s.get(Connection, row.connection_id)
        if conn is not None and conn.credential_id:
            out = [("credential", s.get(Credential, conn.credential_id))]
    elif isinstance(row, CloudFlow):
        out = [(key, find_component(s, env_id, key, a[key])) for a in row.actions or [] if isinstance(a, dict)
               for key in ACTION_KEYS if isinstance(a.get(key), str)]
    unique: dict[tuple[str, str], tuple[str, Row]] = {}
    for t, r in out:
        if r is not None:
            unique.setdefault((t, r.id), (t, r))
    return list(unique.values())


def members(s: Session, sol: Solution) -> list[tuple[str, Row]]:
    """The solution's components that still exist, in import order then by name."""
    out: list[tuple[str, Row]] = []
    for c in s.scalars(select(SolutionComponent).where(SolutionComponent.solution_id == sol.id)).all():
        row = _get(s, c.component_type, c.component_id) if c.component_type in TABLES else None
        if row is not None:
            out.append((c.component_type, row))
    return sorted(out, key=lambda tr: (m.COMPONENT_TYPES.index(tr[0]), name_of(tr[1])))


def _providers(s: Session, type_: str, component_id: str, except_solution: str) -> list[str]:
    return sorted(s.scalars(select(Solution.unique_name).join(SolutionComponent).where(
        SolutionComponent.component_type == type_, SolutionComponent.component_id == component_id,
        Solution.id != except_solution)).all())


def _view(s: Session, sol: Solution) -> dict[str, Any]:
    return {"id": sol.id, "unique_name": sol.unique_name, "display_name": sol.display_name,
            "version": sol.version, "publisher": sol.publisher, "environment": sol.env_id, "owner": sol.owner_id,
            "created_at": views.ts(sol.created_at),
            "components": [{"type": t, "id": r.id, "name": name_of(r)} for t, r in members(s, sol)]}


# --- use cases ------------------------------------------------------------------------------------------------
def create_solution(core: Core, actor: Actor, env_id: str, unique_name: str, display_name: str, version: str,
                    publisher: str | None = None) -> dict[str, Any]:
    try:
        info = m.SolutionInfo(unique_name=unique_name, display_name=display_name, version=version,
                              publisher=publisher)
    except ValidationError as exc:
        raise RuleViolation("unique_name is a letter then letters, digits or _; version is like 1.0.0.0",
                            code="invalid_solution", errors=m.problems(exc)) from None
    with core.db.transaction() as s:
        env, _ = authz.require_env(s, actor, env_id, "solution.write")
        if s.scalar(select(Solution.id).where(Solution.env_id == env.id, Solution.unique_name == unique_name)):
            raise Conflict(f"a solution {unique_name!r} exists in this environment", code="duplicate_name")
        sol = Solution(env_id=env.id, unique_name=info.unique_name, display_name=info.display_name,
                       version=info.version, publisher=info.publisher, owner_id=actor.id)
        s.add(sol)
        s.flush()
        record(s, actor=actor.label, action="solution.create", env_id=env.id, object_type="solution",
               object_id=sol.id, detail={"unique_name": sol.unique_name, "version": sol.version})
        return _view(s, sol)


def list_solutions(core: Core, actor: Actor, env_id: str, limit: int = 50, cursor: str | None = None
                   ) -> dict[str, Any]:
    """One page of the environment's solutions, in the order they were made."""
    cursor = lookup.id_cursor(cursor)
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "solution.read")
        return lookup.seek(s, select(Solution).where(Solution.env_id == env.id), Solution.id, limit=limit,
                           cursor=cursor, view=lambda sol: _view(s, sol))


def page_solutions(core: Core, actor: Actor, env_id: str, listing: lookup.Listing) -> dict[str, Any]:
    """One page of the environment's solutions, searched by unique or display name, sorted by either or by
    creation."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "solution.read")
        return lookup.page(s, select(Solution).where(Solution.env_id == env.id), listing,
                           search=[Solution.unique_name, Solution.display_name], key=Solution.id,
                           view=lambda sol: _view(s, sol),
                           sorts={"name": Solution.display_name, "unique_name": Solution.unique_name,
                                  "created": Solution.created_at})


def get_solution(core: Core, actor: Actor, env_id: str, ref: str) -> dict[str, Any]:
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "solution.read")
        return _view(s, find_solution(s, env.id, ref))


def update_solution(core: Core, actor: Actor, env_id: str, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename or re-version a solution: a higher version is what lets an import update it elsewhere."""
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "solution.write")
        sol = find_solution(s, env.id, ref)
        authz.require_owner(actor, role, sol.owner_id, "solution")
        fields = {k: v for k, v in changes.items() if k in ("display_name", "version", "publisher")}
        current = {"unique_name": sol.unique_name, "display_name": sol.display_name, "version": sol.version,
                   "publisher": sol.publisher}
        try:
            info = m.SolutionInfo.model_validate({**current, **fields})
        except ValidationError as exc:
            raise RuleViolation("display_name is 1-200 characters; version is like 1.0.0.0", code="invalid_solution",
                                errors=m.problems(exc)) from None
        sol.display_name, sol.version, sol.publisher = info.display_name, info.version, info.publisher
        record(s, actor=actor.label, action="solution.update", env_id=env.id, object_type="solution",
               object_id=sol.id, detail={"fields": sorted(fields), "version": sol.version})
        return _view(s, sol)


def _may_see(s: Session, actor: Actor, role: EnvironmentRole, row: Row) -> bool:
    return not isinstance(row, Credential) or authz.credential_role(s, actor, row, role) is not None


def add_component(core: Core, actor: Actor, env_id: str, solution: str, type_: str, ref: str,
                  add_required: bool = True) -> dict[str, Any]:
    if type_ not in TABLES:
        types = list(m.COMPONENT_TYPES)
        raise RuleViolation(f"unknown component type; the types are {', '.join(types)}",
                            code="unknown_component_type", known=types, allowed=types)
    with core.db.transaction() as s:
        env, role = authz.require_env(s, actor, env_id, "solution.write")
        sol = find_solution(s, env.id, solution)
        authz.require_owner(actor, role, sol.owner_id, "solution")
        row = find_component(s, env.id, type_, ref)
        if row is None or not _may_see(s, actor, role, row):
            raise NotFound(f"{type_} {ref!r} not found", code="component_not_found")
        added: list[dict[str, str]] = []
        queue: list[tuple[str, Row]] = [(type_, row)]
        while queue:
            t, r = queue.pop(0)
            member = s.get(SolutionComponent, (sol.id, t, r.id)) is not None
            if r is not row and (member or _providers(s, t, r.id, sol.id) or not _may_see(s, actor, role, r)):
                continue  # another solution provides it: the export names that solution as a dependency
            if not member:
                s.add(SolutionComponent(solution_id=sol.id, component_type=t, component_id=r.id))
                added.append({"type": t, "id": r.id, "name": name_of(r)})
            if add_required:
                queue.extend(requires(s, env.id, r))
        s.flush()
        record(s, actor=actor.label, action="solution.add_component", env_id=env.id, object_type="solution",
               object_id=sol.id, detail={"added": [{"type": a["type"], "id": a["id"]} for a in added]})
        return {**_view(s, sol), "added": added}


def _doc(s: Session, env_id: str, row: Row) -> m.Doc:
    if isinstance(row, EnvironmentVariable):
        if row.type == "text":
            return m.VariableDoc(schema_name=row.schema_name, display_name=row.display_name, type="text",
                                 value=row.value or "")
        store = s.get(SecretStore, row.store_id) if row.store_id else None
        ref = m.SecretReferenceDoc(store=store.name if store else "", name=row.secret_name or "",
                                   version=row.secret_version)
        return m.VariableDoc(schema_name=row.schema_name, display_name=row.display_name, type="secret",
                             secret_reference=ref)
    if isinstance(row, Credential):
        user, password = (s.get(EnvironmentVariable, i) for i in (row.username_variable_id, row.password_variable_id))
        return m.CredentialDoc(name=row.name, description=row.description,
                               username_variable=user.schema_name if user else "",
                               password_variable=password.schema_name if password else "")
    if isinstance(row, DesktopFlow):
        return m.DesktopFlowDoc(name=row.name, command=list(row.command))
    if isinstance(row, ConnectionReference):
        needed = requires(s, env_id, row)
        return m.ConnectionReferenceDoc(name=row.name, credential=name_of(needed[0][1]) if needed else None)
    actions = []
    for action in row.actions or []:
        named = dict(action)
        for key in ACTION_KEYS:
            target = find_component(s, env_id, key, named[key]) if isinstance(named.get(key), str) else None
            if target is not None:
                named[key] = name_of(target)
        actions.append(named)
    return m.CloudFlowDoc(name=row.name, trigger=dict(row.trigger or {}), actions=actions)


def export_solution(core: Core, actor: Actor, env_id: str, ref: str) -> tuple[str, bytes]:
    """The solution as a zip: its manifest, one document per component, never a secret value."""
    with core.db.read() as s:
        env, _ = authz.require_env(s, actor, env_id, "solution.read")
        sol = find_solution(s, env.id, ref)
        parts = members(s, sol)
        inside = {(t, r.id) for t, r in parts}
        deps: dict[tuple[str, str], m.Dependency] = {}
        for _, row in parts:
            for t, needed in requires(s, env.id, row):
                key = (t, name_of(needed))
                if (t, needed.id) not in inside and key not in deps:
                    providers = _providers(s, t, needed.id, sol.id)
                    deps[key] = m.Dependency.model_validate({"type": t, "name": key[1],
                                                             "solution": providers[0] if providers else None})
        info = m.SolutionInfo(unique_name=sol.unique_name, display_name=sol.display_name, version=sol.version,
                              publisher=sol.publisher)
        data = pack(info, [(t, _doc(s, env.id, r)) for t, r in parts], [deps[k] for k in sorted(deps)])
        return f"{sol.unique_name}_{sol.version.replace('.', '_')}.zip", data
