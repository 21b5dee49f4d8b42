from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from credflow.api.deps import ActorDep, CoreDep
from credflow.api.errors import problem_responses
from credflow.api.models import CredentialDependencies, CredentialLeases, CredentialPublic, Page, VerificationPublic
from credflow.api.paging import Limit
from credflow.api.schemas import CredentialCreate, CredentialUpdate
from credflow.services.automation import leases
from credflow.services.catalog import credentials, dependencies, verification

router = APIRouter(prefix="/environments/{env}/credentials", tags=["credentials"],
                   responses=problem_responses(401, 403, 404, 422))


@router.post("", status_code=201, response_model=CredentialPublic, responses=problem_responses(400, 409))
def create_credential(env: str, body: CredentialCreate, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return credentials.create_credential(core, actor, env, body.name, body.description, body.username_variable,
                                         body.password_variable, solution=body.solution,
                                         max_age_days=body.max_age_days, max_concurrent_runs=body.max_concurrent_runs,
                                         verification_spec=body.verification and body.verification.model_dump())


@router.get("", response_model=Page[CredentialPublic], responses=problem_responses(400))
def list_credentials(env: str, core: CoreDep, actor: ActorDep, limit: Limit = 50, cursor: str | None = None
                     ) -> dict[str, Any]:
    return credentials.list_credentials(core, actor, env, limit=limit, cursor=cursor)


@router.get("/{cred}", response_model=CredentialPublic)
def get_credential(env: str, cred: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    return credentials.get_credential(core, actor, env, cred)


@router.patch("/{cred}", response_model=CredentialPublic, responses=problem_responses(400, 409))
def update_credential(env: str, cred: str, body: CredentialUpdate, core: CoreDep, actor: ActorDep
                      ) -> dict[str, Any]:
    return credentials.update_credential(core, actor, env, cred, body.model_dump(exclude_unset=True))


@router.delete("/{cred}", status_code=204, responses=problem_responses(409))
def delete_credential(env: str, cred: str, core: CoreDep, actor: ActorDep, force: bool = False) -> Response:
    credentials.delete_credential(core, actor, env, cred, force=force)
    return Response(status_code=204)


@router.get("/{cred}/dependencies", response_model=CredentialDependencies, responses=problem_responses(400))
def credential_dependencies(env: str, cred: str, core: CoreDep, actor: ActorDep, limit: Limit = 50,
                            cursor: str | None = None) -> dict[str, Any]:
    return dependencies.credential_dependencies(core, actor, env, cred, limit, cursor)


@router.get("/{cred}/leases", response_model=CredentialLeases)
def credential_leases(env: str, cred: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    """Who holds the credential's leases (its running runs, with their machines) and how many runs wait for one."""
    return leases.leases_of(core, actor, env, cred)


@router.post("/{cred}/verify", status_code=202, response_model=VerificationPublic, responses=problem_responses(409))
def verify_credential(env: str, cred: str, core: CoreDep, actor: ActorDep) -> dict[str, Any]:
    """Run the credential's verification now with the newest version of its password: the verification, pending,
    with its run."""
    return verification.verify(core, actor, env, cred)
