"""Settings from ``CREDFLOW_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CREDFLOW_", extra="ignore")

    data_dir: Path = Path(".credflow")
    database_url: str | None = None
    master_key: str | None = Field(default=None, repr=False)
    bootstrap_token: str | None = Field(default=None, repr=False)
    # The Microsoft Entra tenant of this credflow: Azure Key Vault stores are checked against it.
    tenant_id: str | None = None
    # How long the last good version of a secret keeps serving while its vault fails.
    stale_if_error_seconds: int = 3600
    # The health page warns expires_soon this many days before a secret version expires.
    expiry_warning_days: int = 14
    # How often notification hooks are told of findings that appeared or cleared.
    health_notify_interval_seconds: float = 30.0
    # A machine is online while its last heartbeat is younger than this.
    machine_offline_after_seconds: int = 60
    # A run holding a lease of a credential with max_concurrent_runs fails machine_lost, and its lease goes to the
    # next run, once its machine has not been seen for this long.
    lease_grace_seconds: int = 120
    registration_token_ttl_seconds: int = 3600
    max_log_bytes: int = 1_000_000
    # The largest request body, counted as it arrives (413 above it); solution imports may be larger.
    max_body_bytes: int = 1_048_576
    max_import_body_bytes: int = 16_777_216
    # Failed authentications from one client address in a sliding window, after which it gets 429.
    failed_auth_limit: int = 20
    failed_auth_window_seconds: int = 60
    # How long a process remembers who a bearer token names (0: not at all). A token revoked, a user disabled or a
    # machine deleted stops at once on the replica that made the change, and within this on the others.
    auth_cache_seconds: float = Field(default=0.5, ge=0, le=60)
    # Logs: "text" (one readable line each) or "json" (one JSON object per line, with the request id).
    log_format: str = "text"
    # GET /metrics answers a bearer of this token (32 or more of A-Z a-z 0-9 - _), or, unset, callers on this host.
    metrics_token: str | None = Field(default=None, repr=False)
    run_workers: bool = True  # the in-process rotation worker, poller and scheduler
    # Whether a secret store may use this server's own identity: a managed identity, AWS's default credential
    # chain, the host's VAULT_CLIENT_CERT or ~/.netrc. Off, a store must carry credentials of its own.
    allow_ambient_credentials: bool = False
    # Single sign-on through an OpenID provider (docs/identity.md): on when issuer, client id and secret are set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)
    oidc_name: str | None = None  # "Sign in with <name>"; default: the issuer's host
    oidc_auto_create: bool = False  # create a person the server has never seen, on first sign-in
    oidc_role_map: str | None = None  # JSON: group -> {environment: role}, re-applied at every sign-in
    oidc_groups_claim: str = "groups"
    oidc_scopes: str = "openid email profile"
    oidc_require_verified_email: bool = True  # email_verified must be true (Entra ID sends none: see the docs)
    local_passwords: bool = True  # false: only single sign-on signs people in to the pages
    # The address people reach this server at (behind a proxy); the sign-on callback is made from it.
    public_url: str | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'credflow.db').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "master.key"
