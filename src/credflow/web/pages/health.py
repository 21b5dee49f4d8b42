"""The Health page: what needs attention in an environment, worst first (the findings the person may see); the
navigation's badge counts its critical and warning findings, and sign-in lands here when one is critical."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from credflow.services.automation import health
from credflow.web.auth import CurrentUser, core_of
from credflow.web.render import load_env, page_router, render

router = page_router()
KIND_LABELS = {"expired": "Expired", "expires_soon": "Expires soon", "unreadable": "Secret unreadable",
               "stale": "Stale secret", "not_rotated": "Not rotated", "verification_failed": "Verification failed",
               "unused": "Unused", "lease_contention": "Waiting for leases"}


@router.get("/env/{env}/health")
def health_page(request: Request, env: str, user: CurrentUser) -> Response:
    e = load_env(request, user, env)
    found = health.findings(core_of(request), user.actor, e.id)
    return render(request, "health/list.html", user=user, env=e, findings=found["items"], counts=found["counts"],
                  kind_labels=KIND_LABELS)
