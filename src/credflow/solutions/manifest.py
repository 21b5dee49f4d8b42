"""The manifest of a solution package, the component documents it carries, and deployment settings.

A package holds references and bindings, never a secret value: a secret environment variable travels as
``{store: STORE NAME, name, version}``, a credential as the schema names of its two variables, a cloud flow with
its desktop flows and connection references by name.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from credflow.domain.errors import Malformed, RuleViolation

SCHEMA_VERSION = 1
ComponentType = Literal["environment_variable", "credential", "desktop_flow", "connection_reference", "cloud_flow"]
# Also the order of an import: what a component needs comes before it.
COMPONENT_TYPES: tuple[str, ...] = get_args(ComponentType)
UNIQUE_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,99}$"
VERSION = r"^\d{1,9}(\.\d{1,9}){0,3}$"
SCHEMA_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,99}$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SolutionInfo(Doc):
    unique_name: str = Field(pattern=UNIQUE_NAME)
    display_name: Name
    version: str = Field(pattern=VERSION)
    publisher: str | None = Field(default=None, max_length=200)


class ComponentEntry(Doc):
    type: ComponentType
    name: Name
    file: str = Field(min_length=1, max_length=300)


class Dependency(Doc):
    """A component of another solution that this one needs, and the solution that provides it (None: no solution
    of the exporting environment holds it, so the target environment must already have it)."""

    type: ComponentType
    name: Name
    solution: str | None = None


class Manifest(Doc):
    schema_version: int
    solution: SolutionInfo
    components: list[ComponentEntry] = Field(max_length=1000)
    dependencies: list[Dependency] = Field(default_factory=list, max_length=1000)
    exported_at: str | None = None

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        keys = [(c.type, c.name) for c in self.components]
        files = [c.file for c in self.components]
        if len(set(keys)) != len(keys) or len(set(files)) != len(files):
            raise ValueError("each component and each component file appears once")
        return self


class SecretReferenceDoc(Doc):
    store: Name  # the store's name: ids differ between environments
    name: str = Field(min_length=1, max_length=500)
    version: str | None = Field(default=None, max_length=200)


class VariableDoc(Doc):
    schema_name: str = Field(pattern=SCHEMA_NAME)
    display_name: Name
    type: Literal["text", "secret"]
    value: str | None = Field(default=None, max_length=25_000)
    secret_reference: SecretReferenceDoc | None = None

    @model_validator(mode="after")
    def _fields(self) -> VariableDoc:
        if self.type == "text" and (self.value is None or self.secret_reference is not None):
            raise ValueError("a text variable carries value only")
        if self.type == "secret" and (self.value is not None or self.secret_reference is None):
            raise ValueError("a secret variable carries secret_reference only, never a value")
        return self


class CredentialDoc(Doc):
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    username_variable: str = Field(pattern=SCHEMA_NAME)  # schema names
    password_variable: str = Field(pattern=SCHEMA_NAME)


class DesktopFlowDoc(Doc):
    name: Name
    command: list[str] = Field(min_length=1, max_length=200)


class ConnectionReferenceDoc(Doc):
    name: Name
    credential: str | None = None  # the credential of the connection it was bound to, by name


class CloudFlowDoc(Doc):
    name: Name
    trigger: dict[str, Any]
    actions: list[dict[str, Any]] = Field(max_length=200)  # desktop_flow / connection_reference by name


DOC_MODELS: dict[str, type[Doc]] = {
    "environment_variable": VariableDoc,
    "credential": CredentialDoc,
    "desktop_flow": DesktopFlowDoc,
    "connection_reference": ConnectionReferenceDoc,
    "cloud_flow": CloudFlowDoc,
}


def doc_name(doc: Doc) -> str:
    return doc.schema_name if isinstance(doc, VariableDoc) else str(getattr(doc, "name"))  # noqa: B009


class VariableSetting(Doc):
    value: str | None = None
    secret_reference: dict[str, Any] | str | None = None


class DeploymentSettings(Doc):
    """What differs per target environment: variable values, secret references, connection bindings."""

    environment_variables: dict[str, VariableSetting] = Field(default_factory=dict)
    connection_references: dict[str, str] = Field(default_factory=dict)  # name -> connection id or name


def version_key(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Where and what, never the offending input (it may be a value)."""
    return [{"field": ".".join(str(p) for p in e["loc"]) or "(root)", "problem": e["msg"]} for e in exc.errors()]


def _json(raw: bytes, what: str, code: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RuleViolation(f"{what} is not valid UTF-8 JSON", code=code) from None


def parse_manifest(raw: bytes) -> Manifest:
    data = _json(raw, "manifest.json", "invalid_manifest")
    if not isinstance(data, dict):
        raise RuleViolation("manifest.json must be a JSON object", code="invalid_manifest")
    found = data.get("schema_version")
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise RuleViolation("manifest.json needs an integer schema_version", code="invalid_manifest")
    if found > SCHEMA_VERSION:
        raise RuleViolation(f"the package uses manifest schema {found}; this server reads up to {SCHEMA_VERSION}. "
                            "Upgrade credflow to import it", code="unsupported_schema_version",
                            schema_version=found, supported=SCHEMA_VERSION)
    listed = [*(data.get("components") or []), *(data.get("dependencies") or [])]
    unknown = sorted({str(c.get("type"))[:60] for c in listed if isinstance(c, dict) and isinstance(c.get("type"), str)
                      and c["type"] not in COMPONENT_TYPES})
    if unknown:
        raise RuleViolation("the package names component types this server does not know",
                            code="unknown_component_type", types=unknown, known=list(COMPONENT_TYPES))
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise RuleViolation("manifest.json does not match the manifest schema", code="invalid_manifest",
                            errors=problems(exc)) from None


def parse_doc(entry: ComponentEntry, raw: bytes) -> Doc:
    where = {"type": entry.type, "name": entry.name}
    data = _json(raw, f"the file of {entry.type} {entry.name!r}", "invalid_component")
    try:
        doc = DOC_MODELS[entry.type].model_validate(data)
    except ValidationError as exc:
        raise RuleViolation(f"the {entry.type} {entry.name!r} is not valid", code="invalid_component",
                            component=where, errors=problems(exc)) from None
    if doc_name(doc) != entry.name:
        raise RuleViolation(f"the file of {entry.type} {entry.name!r} describes another component",
                            code="invalid_component", component=where)
    return doc


def parse_settings(raw: bytes | None) -> DeploymentSettings:
    if not raw:
        return DeploymentSettings()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Malformed("the deployment settings are not valid UTF-8 JSON", code="malformed_settings") from None
    try:
        return DeploymentSettings.model_validate(data)
    except ValidationError as exc:
        raise RuleViolation("the deployment settings do not match their schema", code="invalid_settings",
                            errors=problems(exc)) from None
