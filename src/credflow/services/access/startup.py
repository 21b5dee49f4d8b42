"""What the server checks of its identity settings before it starts, each refusal saying why and how to fix it."""

from __future__ import annotations

import re

from credflow.services.access import sso
from credflow.settings import Settings

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
MIN_BOOTSTRAP_CHARACTERS = 32  # from a 64-character alphabet: at least 128 bits when made at random


def check_bootstrap_token(token: str | None) -> None:
    """``CREDFLOW_BOOTSTRAP_TOKEN`` has at least 128 bits of entropy: 32 characters or more, all from the URL-safe
    alphabet (A-Z a-z 0-9 - _)."""
    if token is None:
        return
    if len(token) < MIN_BOOTSTRAP_CHARACTERS or not URL_SAFE.fullmatch(token):
        raise ValueError(
            f"CREDFLOW_BOOTSTRAP_TOKEN is too weak: it needs at least {MIN_BOOTSTRAP_CHARACTERS} characters from "
            f"A-Z a-z 0-9 - _ (128 bits when random), and this one has {len(token)}"
            f"{'' if URL_SAFE.fullmatch(token or 'x') else ' and others besides'}; make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))', or leave it unset and credflow prints one")


def check_metrics_token(token: str | None) -> None:
    """``CREDFLOW_METRICS_TOKEN``, when set, is as strong as the bootstrap token must be."""
    if token is not None and (len(token) < MIN_BOOTSTRAP_CHARACTERS or not URL_SAFE.fullmatch(token)):
        raise ValueError(
            f"CREDFLOW_METRICS_TOKEN is too weak: it needs at least {MIN_BOOTSTRAP_CHARACTERS} characters from "
            "A-Z a-z 0-9 - _; make one with python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


def check(settings: Settings) -> None:
    """Refuse to start (``ValueError`` with the reason) on a weak bootstrap or metrics token or half-set single
    sign-on."""
    check_bootstrap_token(settings.bootstrap_token)
    check_metrics_token(settings.metrics_token)
    sso.check_settings(settings)
