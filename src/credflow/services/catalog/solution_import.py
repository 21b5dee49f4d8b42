"""Importing a solution package into an environment.

The package is read and checked first (``credflow.solutions``); then, in one transaction: the caller's rights, the
version (only a newer one updates a solution in place), the dependencies (409 ``missing_dependencies`` naming each
missing component and the solution that provides it), and every component in the order of
``COMPONENT_TYPES``. Any error rolls everything back; a dry run does all of it and then rolls back on purpose.

An import never overwrites what belongs to the target environment: an existing variable keeps its value or
secret reference, and a connection reference its connection, unless the deployment settings name them. It
updates an existing component only where the importer owns it or administers the environment (a credential:
where the importer may edit it); otherwise 409 ``not_owner`` names every such component and nothing changes.
Everything it creates belongs to the importer, and binds only what the importer may use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation
from credflow.domain.roles import credential_allows, env_allows
from credflow.persistence.tables import (
    CloudFlow,
    ConnectionReference,
    Credential,
    DesktopFlow,
    EnvironmentVariable,
    Solution,
    SolutionComponent,
    utcnow,
)
from credflow.services.access import authz
from credflow.services.automation import cloud_flows
from credflow.services.automation.connections import connection_to_use
from credflow.services.automation.desktop_flows import check_desktop_flow
from credflow.services.catalog.credentials import require_binding
from credflow.services.catalog.solutions import ACTION_KEYS, Row, by_name, name_of
from credflow.services.catalog.variables import set_reference, set_text
from credflow.services.core import Actor, Core
from credflow.services.secrets import connection_state
from credflow.solutions import manifest as m
from credflow.solutions.package import Package, unpack

CREATE_ACTIONS = {"environment_variable": "variable.create", "credential": "credential.create",
                  "desktop_flow": "desktop_flow.create", "connection_reference": "connection_reference.create",
                  "cloud_flow": "cloud_flow.create"}


class _DryRun(Exception):
    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report


def import_solution(core: Core, actor: Actor, env_id: str, data: bytes, settings: bytes | None = None,
                    dry_run: bool = False) -> dict[str, Any]:
    package = unpack(data)
    deploy = m.parse_settings(settings)
    _check_settings(package, deploy)
    try:
        with core.db.transaction() as s:
            job = _Import(core, s, actor, env_id, package, deploy)
            report = {**job.run(), "dry_run": dry_run}
            if dry_run:
                raise _DryRun(report)
            for var in job.changed_variables:
                connection_state.follow_reference(s, var)
            return report
    except _DryRun as done:
        for item in done.report["created"]:
            item.pop("id", None)  # rolled back: those ids never existed
        return done.report


def _check_settings(package: Package, deploy: m.DeploymentSettings) -> None:
    docs = {(e.type, e.name): d for e, d in package.components}
    unknown = [f"environment_variables.{n}" for n in deploy.environment_variables
               if ("environment_variable", n) not in docs]
    unknown += [f"connection_references.{n}" for n in deploy.connection_references
                if ("connection_reference", n) not in docs]
    if unknown:
        raise RuleViolation("the deployment settings name components this solution does not contain",
                            code="invalid_settings", errors=[{"field": f, "problem": "not in the solution"}
                                                             for f in unknown])
    for name, setting in deploy.environment_variables.items():
        doc = docs[("environment_variable", name)]
        assert isinstance(doc, m.VariableDoc)
        wants_text = setting.value is not None and setting.secret_reference is None
        wants_secret = setting.secret_reference is not None and setting.value is None
        if (doc.type == "text" and not wants_text) or (doc.type == "secret" and not wants_secret):
            field = "value" if doc.type == "text" else "secret_reference"
            raise RuleViolation(f"a {doc.type} variable takes only {field} in the deployment settings",
                                code="invalid_settings", errors=[{"field": f"environment_variables.{name}",
                                                                  "problem": f"give {field} only"}])


def references(doc: m.Doc) -> list[tuple[str, str]]:
    """The components, by type and name, a component document needs."""
    if isinstance(doc, m.CredentialDoc):
        return [("environment_variable", doc.username_variable), ("environment_variable", doc.password_variable)]
    if isinstance(doc, m.ConnectionReferenceDoc):
        return [("credential", doc.credential)] if doc.credential else []
    if isinstance(doc, m.CloudFlowDoc):
        return [(key, a[key]) for a in doc.actions for key in ACTION_KEYS if isinstance(a.get(key), str)]
    return []


class _Import:
    def __init__(self, core: Core, s: Session, actor: Actor, env_id: str, package: Package,
                 deploy: m.DeploymentSettings) -> None:
        self.core, self.s, self.actor, self.package, self.deploy = core, s, actor, package, deploy
        self.env, self.role = authz.require_env(s, actor, env_id, "solution.write")
        self.info = package.manifest.solution
        self.changed_variables: list[EnvironmentVariable] = []
        self.not_owned: list[dict[str, str]] = []
        self.handlers: dict[str, Callable[[Any], tuple[str, Row]]] = {
            "environment_variable": self._environment_variable, "credential": self._credential,
            "desktop_flow": self._desktop_flow, "connection_reference": self._connection_reference,
            "cloud_flow": self._cloud_flow}

    def run(self) -> dict[str, Any]:
        for type_ in sorted({e.type for e, _ in self.package.components}):
            if not env_allows(self.role, CREATE_ACTIONS[type_]):
                raise Forbidden(f"your role {self.role.value} may not create {type_} components")
        existing = self.s.scalar(select(Solution).where(Solution.env_id == self.env.id,
                                                        Solution.unique_name == self.info.unique_name))
        if existing is not None and m.version_key(self.info.version) <= m.version_key(existing.version):
            raise Conflict(f"solution {self.info.unique_name!r} {existing.version} is installed; only a newer "
                           "version updates it", code="version_not_newer", installed_version=existing.version)
        self._check_dependencies()
        report: dict[str, Any] = {"created": [], "updated": [], "unchanged": []}
        rows: list[tuple[str, Row]] = []
        order = sorted(self.package.components, key=lambda ed: m.COMPONENT_TYPES.index(ed[0].type))
        for entry, doc in order:
            try:
                outcome, row = self.handlers[entry.type](doc)
            except DomainError as exc:
                exc.extra.setdefault("component", {"type": entry.type, "name": entry.name})
                raise
            report[outcome].append({"type": entry.type, "name": entry.name, "id": row.id})
            rows.append((entry.type, row))
        if self.not_owned:
            raise Conflict(f"{len(self.not_owned)} component(s) of this solution exist here and belong to someone "
                           "else; their owner or a system administrator may import it", code="not_owner",
                           components=self.not_owned)
        previous = existing.version if existing is not None else None
        sol = self._solution(existing, rows)
        record(self.s, actor=self.actor.label, action="solution.import", env_id=self.env.id,
               object_type="solution", object_id=sol.id,
               detail={"unique_name": sol.unique_name, "version": sol.version, "previous_version": previous,
                       **{k: len(report[k]) for k in ("created", "updated", "unchanged")}})
        report["solution"] = {"unique_name": sol.unique_name, "display_name": sol.display_name,
                              "version": sol.version, "previous_version": previous}
        return report

    def _check_dependencies(self) -> None:
        inside = {(e.type, e.name) for e, _ in self.package.components}
        needed: dict[tuple[str, str], str | None] = {
            (d.type, d.name): d.solution for d in self.package.manifest.dependencies}
        for _, doc in self.package.components:
            for key in references(doc):
                needed.setdefault(key, None)
        missing = [{"type": t, "name": n, "solution": sol} for (t, n), sol in sorted(needed.items())
                   if (t, n) not in inside and by_name(self.s, self.env.id, t, n) is None]
        if missing:
            first = sorted({x["solution"] for x in missing if x["solution"]})
            hint = f"; import {', '.join(first)} first" if first else ""
            raise Conflict(f"{len(missing)} component(s) this solution needs are not in the environment{hint}",
                           code="missing_dependencies", missing=missing)

    def _solution(self, existing: Solution | None, rows: list[tuple[str, Row]]) -> Solution:
        sol = existing or Solution(env_id=self.env.id, unique_name=self.info.unique_name, owner_id=self.actor.id)
        sol.display_name, sol.version, sol.publisher = self.info.display_name, self.info.version, self.info.publisher
        self.s.add(sol)
        self.s.flush()
        self.s.execute(delete(SolutionComponent).where(SolutionComponent.solution_id == sol.id))
        for type_, row in {(t, r.id): (t, r) for t, r in rows}.values():
            self.s.add(SolutionComponent(solution_id=sol.id, component_type=type_, component_id=row.id))
        self.s.flush()
        return sol

    def _may_update(self, type_: str, row: Row) -> bool:
        """Whether the importer may update ``row``; if not, it is named in the 409 ``not_owner`` at the end."""
        if isinstance(row, Credential):
            allowed = credential_allows(authz.credential_role(self.s, self.actor, row, self.role), "edit")
        else:
            allowed = authz.owns(self.actor, self.role, row.owner_id)
        if not allowed:
            self.not_owned.append({"type": type_, "name": name_of(row), "id": row.id})
        return allowed

    def _audit(self, action: str, type_: str, row: Row, **detail: Any) -> None:
        record(self.s, actor=self.actor.label, action=action, env_id=self.env.id, object_type=type_,
               object_id=row.id, detail={**detail, "solution": self.info.unique_name})

    def _find(self, type_: str, name: str) -> Any:
        row = by_name(self.s, self.env.id, type_, name)
        if row is None:
            raise NotFound(f"{type_} {name!r} not found", code="component_not_found")
        return row

    # --- one method per component type: returns ("created" | "updated" | "unchanged", row) -----------------
    def _environment_variable(self, doc: m.VariableDoc) -> tuple[str, Row]:
        setting = self.deploy.environment_variables.get(doc.schema_name)
        var = by_name(self.s, self.env.id, "environment_variable", doc.schema_name)
        if var is None:
            var = EnvironmentVariable(env_id=self.env.id, schema_name=doc.schema_name, display_name=doc.display_name,
                                      type=doc.type, created_by=self.actor.id, owner_id=self.actor.id)
            self._set(var, doc, setting)
            self.s.add(var)
            self.s.flush()
            self._audit("variable.create", "environment_variable", var, schema_name=var.schema_name, type=var.type)
            return "created", var
        assert isinstance(var, EnvironmentVariable)
        if var.type != doc.type:
            raise RuleViolation(f"the environment variable {doc.schema_name!r} is {var.type} here, {doc.type} in "
                                "the solution", code="variable_type_mismatch")
        fields = ["display_name"] if var.display_name != doc.display_name else []
        var.display_name = doc.display_name
        if setting is not None:
            before = (var.value, var.store_id, var.secret_name, var.secret_version)
            self._set(var, doc, setting)
            if (var.value, var.store_id, var.secret_name, var.secret_version) != before:
                fields.append("value" if var.type == "text" else "secret_reference")
                if var.type == "secret":
                    self.changed_variables.append(var)
        if not fields or not self._may_update("environment_variable", var):
            return "unchanged", var
        var.updated_at = utcnow()
        self._audit("variable.update", "environment_variable", var, fields=fields)
        return "updated", var

    def _set(self, var: EnvironmentVariable, doc: m.VariableDoc, setting: m.VariableSetting | None) -> None:
        if doc.type == "text":
            set_text(var, setting.value if setting is not None else doc.value)
            return
        assert doc.secret_reference is not None
        raw = setting.secret_reference if setting is not None else doc.secret_reference.model_dump(exclude_none=True)
        # The same checks as creating the variable: the store exists here by name, the caller may use it, and the
        # secret can be read.
        set_reference(self.core, self.s, self.actor, self.role, self.env.id, var, raw)

    def _credential(self, doc: m.CredentialDoc) -> tuple[str, Row]:
        user = self._find("environment_variable", doc.username_variable)
        password = self._find("environment_variable", doc.password_variable)
        if user.type != "text" or password.type != "secret":
            raise RuleViolation("a credential takes a text username variable and a secret password variable",
                                code="wrong_variable_type")
        cred = by_name(self.s, self.env.id, "credential", doc.name)
        if cred is None:
            require_binding(self.s, self.actor, self.role, password)
            cred = Credential(env_id=self.env.id, name=doc.name, description=doc.description,
                              username_variable_id=user.id, password_variable_id=password.id, owner_id=self.actor.id)
            self.s.add(cred)
            self.s.flush()
            self._audit("credential.create", "credential", cred, name=cred.name, username_variable=user.id,
                        password_variable=password.id)
            return "created", cred
        assert isinstance(cred, Credential)
        if not credential_allows(authz.credential_role(self.s, self.actor, cred, self.role), "edit"):
            raise Conflict(f"a credential named {doc.name!r} exists in this environment and you may not edit it",
                           code="duplicate_name")
        if (cred.username_variable_id, cred.password_variable_id) != (user.id, password.id):
            raise RuleViolation("the credential exists here with other environment variables, and the variables "
                                "of a credential cannot be changed", code="credential_variables_immutable")
        if cred.description == doc.description or not self._may_update("credential", cred):
            return "unchanged", cred
        cred.description, cred.updated_at = doc.description, utcnow()
        self._audit("credential.update", "credential", cred, fields=["description"])
        return "updated", cred

    def _desktop_flow(self, doc: m.DesktopFlowDoc) -> tuple[str, Row]:
        _, command = check_desktop_flow(doc.name, doc.command)
        flow = by_name(self.s, self.env.id, "desktop_flow", doc.name)
        if flow is None:
            flow = DesktopFlow(env_id=self.env.id, name=doc.name, command=command, created_by=self.actor.id,
                               owner_id=self.actor.id)
            self.s.add(flow)
            self.s.flush()
            self._audit("desktop_flow.create", "desktop_flow", flow, name=flow.name)
            return "created", flow
        assert isinstance(flow, DesktopFlow)
        if list(flow.command) == command or not self._may_update("desktop_flow", flow):
            return "unchanged", flow
        flow.command = command
        self._audit("desktop_flow.update", "desktop_flow", flow, fields=["command"])
        return "updated", flow

    def _connection_reference(self, doc: m.ConnectionReferenceDoc) -> tuple[str, Row]:
        ref = self.deploy.connection_references.get(doc.name)
        conn = connection_to_use(self.s, self.actor, self.env.id, self.role, ref) if ref else None
        row = by_name(self.s, self.env.id, "connection_reference", doc.name)
        if row is None:
            row = ConnectionReference(env_id=self.env.id, name=doc.name, connection_id=conn.id if conn else None,
                                      owner_id=self.actor.id)
            self.s.add(row)
            self.s.flush()
            self._audit("connection_reference.create", "connection_reference", row, name=row.name,
                        connection=row.connection_id)
            return "created", row
        assert isinstance(row, ConnectionReference)
        if conn is None or row.connection_id == conn.id or not self._may_update("connection_reference", row):
            return "unchanged", row
        cloud_flows.check_rebinding(self.s, row, conn)
        row.connection_id = conn.id
        self._audit("connection_reference.update", "connection_reference", row, connection=conn.id)
        return "updated", row

    def _cloud_flow(self, doc: m.CloudFlowDoc) -> tuple[str, Row]:
        # The cloud flows service's own checks; they also turn the names of desktop flows and connection
        # references into this environment's ids.
        trigger = cloud_flows.check_trigger(doc.trigger)
        actions = cloud_flows.check_actions(self.s, self.env.id, doc.actions)
        next_fire = cloud_flows.first_fire(trigger)
        flow = by_name(self.s, self.env.id, "cloud_flow", doc.name)
        if flow is None:
            cloud_flows.check_bindings(self.s, self.actor.id, actions)
            flow = CloudFlow(env_id=self.env.id, name=doc.name, trigger=trigger, actions=actions,
                             owner_id=self.actor.id, next_fire_at=next_fire)
            self.s.add(flow)
            self.s.flush()
            self._audit("cloud_flow.create", "cloud_flow", flow, name=flow.name)
            return "created", flow
        assert isinstance(flow, CloudFlow)
        if (flow.trigger == trigger and flow.actions == actions) or not self._may_update("cloud_flow", flow):
            return "unchanged", flow
        cloud_flows.check_bindings(self.s, flow.owner_id, actions)
        flow.trigger, flow.actions, flow.next_fire_at = trigger, actions, next_fire
        self._audit("cloud_flow.update", "cloud_flow", flow, fields=["trigger", "actions"])
        return "updated", flow
