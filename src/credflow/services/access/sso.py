"""Single sign-on through an OpenID provider (OpenID Connect), for the web pages and for the CLI.

The browser: the authorization code flow with PKCE (S256), ``state`` and ``nonce``. ``begin_browser`` keeps a
one-time login row (``SsoLogin``, found by the SHA-256 of the state, bound to the browser's pre-session cookie,
sealed) and sends the browser to the provider; ``finish_browser`` takes that row out (a second use of the same
state finds nothing), exchanges the code with the client secret and the PKCE verifier, and verifies the ID token
with joserfc against the provider's JWKS: signature, issuer, audience, expiry and the nonce. Nothing is created
when any of it fails, and each failure is audited (``auth.sso_failed``) with its reason.

The CLI: the device authorization grant (RFC 8628). credflow asks the provider for a device code itself and gives
the CLI only a handle of its own; when the person has signed in at the provider, credflow exchanges the device
code, verifies the ID token, and hands the CLI a credflow token. The provider's tokens never leave the server.

A person is matched by the verified ``email`` claim. One the server has never seen is created on first sign-in
only with ``CREDFLOW_OIDC_AUTO_CREATE``; environment roles come from the groups claim through
``CREDFLOW_OIDC_ROLE_MAP`` (group -> {environment: role}) and are re-applied at every sign-in, for the
environments the map names (roles in others are left as they are).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from credflow.audit.chain import record
from credflow.domain.errors import Conflict, DomainError, RuleViolation, Unauthenticated
from credflow.domain.roles import EnvironmentRole
from credflow.persistence.tables import Environment, Organization, SsoLogin, User, utcnow
from credflow.services import views
from credflow.services.access import authz, tokens, users
from credflow.services.core import Actor, Core
from credflow.settings import Settings

log = logging.getLogger(__name__)

LOGIN_SECONDS = 600  # a browser's sign-in (state) and a device code are good for this long at most
METADATA_SECONDS = 3600
KEYS_REFRESH_SECONDS = 60  # an unknown key id fetches the JWKS again, at most this often
LEEWAY_SECONDS = 30  # clock skew allowed on exp and iat
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 10.0


class SsoRefused(Unauthenticated):
    """A sign-in through the provider that credflow refuses; ``reason`` says why (also in the audit record)."""

    code = "sso_refused"

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, reason=reason, **extra)
        self.reason = reason


class SsoUnavailable(DomainError):
    status, code, title = 503, "sso_unavailable", "The identity provider cannot be reached"


def enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret)


def provider_name(settings: Settings) -> str:
    return settings.oidc_name or urlparse(settings.oidc_issuer or "").hostname or "your identity provider"


def role_map(settings: Settings) -> dict[str, dict[str, str]]:
    """``CREDFLOW_OIDC_ROLE_MAP`` read and checked: group -> {environment: role}."""
    if not settings.oidc_role_map:
        return {}
    try:
        raw = json.loads(settings.oidc_role_map)
    except ValueError as exc:
        raise ValueError(f"CREDFLOW_OIDC_ROLE_MAP is not JSON: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError("CREDFLOW_OIDC_ROLE_MAP is a JSON object: group -> {environment: role}")
    allowed = {r.value for r in EnvironmentRole}
    for group, roles in raw.items():
        for env, role in roles.items():
            if role not in allowed:
                raise ValueError(f"CREDFLOW_OIDC_ROLE_MAP: group {group!r} maps environment {env!r} to "
                                 f"{role!r}, not one of {', '.join(sorted(allowed))}")
    return {str(g): {str(e): str(r) for e, r in roles.items()} for g, roles in raw.items()}


def check_settings(settings: Settings) -> None:
    """Refuse to start with single sign-on half set up or a role map that cannot be read (says why)."""
    parts = [settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret]
    if any(parts) and not all(parts):
        raise ValueError("single sign-on needs CREDFLOW_OIDC_ISSUER, CREDFLOW_OIDC_CLIENT_ID and "
                         "CREDFLOW_OIDC_CLIENT_SECRET together")
    role_map(settings)
    if not settings.local_passwords and not enabled(settings):
        raise ValueError("CREDFLOW_LOCAL_PASSWORDS=false needs single sign-on (CREDFLOW_OIDC_*): else nobody could "
                         "sign in to the pages")


# --- the provider: metadata and keys, cached per process ------------------------------------------------------
@dataclass
class _Cache:
    metadata: dict[str, Any] | None = None
    metadata_at: float = 0.0
    keys: KeySet | None = None
    keys_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _cache(core: Core) -> _Cache:
    found = core.state.get("sso")
    if found is None:
        found = core.state.setdefault("sso", _Cache())
    assert isinstance(found, _Cache)
    return found


def _get_json(url: str) -> dict[str, Any]:
    try:
        resp = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
        resp.raise_for_status()
        got = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("identity provider: %s from %s", type(exc).__name__, url)
        raise SsoUnavailable(f"the identity provider did not answer at {url}; try again") from None
    if not isinstance(got, dict):
        raise SsoUnavailable(f"the identity provider's answer at {url} is not a JSON object")
    return got


def metadata(core: Core) -> dict[str, Any]:
    """The provider's OpenID configuration (discovery), whose ``issuer`` must be the one configured."""
    cache = _cache(core)
    with cache.lock:
        if cache.metadata is not None and time.monotonic() - cache.metadata_at < METADATA_SECONDS:
            return cache.metadata
    issuer = (core.settings.oidc_issuer or "").rstrip("/")
    got = _get_json(f"{issuer}/.well-known/openid-configuration")
    if got.get("issuer") != core.settings.oidc_issuer and got.get("issuer") != issuer:
        raise SsoUnavailable("the identity provider names another issuer than CREDFLOW_OIDC_ISSUER")
    with cache.lock:
        cache.metadata, cache.metadata_at = got, time.monotonic()
    return got


def provider_origins(core: Core) -> list[str]:
    """Where the browser is sent to sign in (for the sign-in page's form-action): the issuer's origin, and the
    authorization endpoint's when the provider's configuration is known already (never fetched here)."""
    urls = [core.settings.oidc_issuer or ""]
    known = _cache(core).metadata
    if known is not None:
        urls.append(str(known.get("authorization_endpoint") or ""))
    origins = []
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https") and parsed.netloc and " " not in parsed.netloc:
            origin = f"{parsed.scheme}://{parsed.netloc}"
            if origin not in origins:
                origins.append(origin)
    return origins


def _keys(core: Core, refresh: bool = False) -> KeySet:
    cache = _cache(core)
    with cache.lock:
        fresh = cache.keys is not None and not (refresh and time.monotonic() - cache.keys_at >= KEYS_REFRESH_SECONDS)
        if fresh and cache.keys is not None:
            return cache.keys
    got = _get_json(str(metadata(core)["jwks_uri"]))
    try:
        keys = KeySet.import_key_set(got)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise SsoUnavailable("the identity provider's JWKS cannot be read") from None
    with cache.lock:
        cache.keys, cache.keys_at = keys, time.monotonic()
    return keys


def verify_id_token(core: Core, id_token: str, nonce: str | None) -> dict[str, Any]:
    """The claims of an ID token the provider signed for this client: signature (the provider's JWKS), issuer,
    audience (and ``azp`` when there are several), expiry, issue time and, for the browser, the nonce. Anything
    else is ``SsoRefused`` with the reason."""
    settings = core.settings
    try:
        try:
            token = jwt.decode(id_token, _keys(core), algorithms=ALGORITHMS)
        except (JoseError, ValueError) as first:
            if not _unknown_key(first):
                raise
            token = jwt.decode(id_token, _keys(core, refresh=True), algorithms=ALGORITHMS)
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": settings.oidc_issuer},
            "aud": {"essential": True, "value": settings.oidc_client_id},
            "exp": {"essential": True}, "iat": {"essential": True}, "sub": {"essential": True}}
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        JWTClaimsRegistry(leeway=LEEWAY_SECONDS, **options).validate(token.claims)
    except ExpiredTokenError:
        raise SsoRefused("id_token_expired", "the identity provider's ID token has expired") from None
    except ClaimError as exc:
        reason = {"iss": "wrong_issuer", "aud": "wrong_audience", "nonce": "wrong_nonce"}.get(exc.claim,
                                                                                             "invalid_id_token")
        raise SsoRefused(reason, f"the ID token's {exc.claim!r} claim is not what this server expects") from None
    except (JoseError, ValueError) as exc:
        raise SsoRefused("invalid_id_token", f"the ID token does not verify: {type(exc).__name__}") from None
    claims = dict(token.claims)
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != settings.oidc_client_id:
        raise SsoRefused("wrong_audience", "the ID token names several audiences and another authorized party")
    return claims


def _unknown_key(exc: Exception) -> bool:
    """Whether the token names a key the cached JWKS lacks (the provider rotated its keys)."""
    return type(exc).__name__ in ("InvalidKeyIdError", "MissingKeyError") or "kid" in str(exc).lower()


def _token_request(core: Core, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST to the provider's token endpoint, authenticated with the client secret (client_secret_basic)."""
    settings = core.settings
    try:
        resp = httpx.post(str(metadata(core)["token_endpoint"]), data=data, timeout=HTTP_TIMEOUT,
                          auth=(settings.oidc_client_id or "", settings.oidc_client_secret or ""))
        body = resp.json() if resp.content else {}
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("identity provider: token endpoint: %s", type(exc).__name__)
        raise SsoUnavailable("the identity provider's token endpoint did not answer; try again") from None
    return resp.status_code, body if isinstance(body, dict) else {}


# --- the browser -----------------------------------------------------------------------------------------------
def begin_browser(core: Core, browser_key: str, next_url: str, redirect_uri: str) -> str:
    """The provider's authorization URL for a sign-in from this browser (``browser_key``: its pre-session cookie),
    after which it comes back to ``redirect_uri`` and then goes to ``next_url``."""
    settings = core.settings
    meta = metadata(core)
    state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
    secret = json.dumps({"verifier": verifier, "nonce": nonce, "next": next_url, "redirect_uri": redirect_uri})
    with core.db.transaction() as s:
        s.execute(delete(SsoLogin).where(SsoLogin.expires_at <= utcnow()))
        row = SsoLogin(kind="browser", key_hash=authz.token_hash(state), browser_hash=authz.token_hash(browser_key),
                       sealed="", expires_at=utcnow() + timedelta(seconds=LOGIN_SECONDS))
        s.add(row)
        s.flush()
        row.sealed = core.barrier.seal(s, secret, _aad(row))
    return add_params_to_uri(str(meta["authorization_endpoint"]), [
        ("response_type", "code"), ("client_id", settings.oidc_client_id or ""), ("redirect_uri", redirect_uri),
        ("scope", settings.oidc_scopes), ("state", state), ("nonce", nonce),
        ("code_challenge", create_s256_code_challenge(verifier)), ("code_challenge_method", "S256")])


def _aad(row: SsoLogin) -> str:
    return f"sso_login:{row.id}:{row.kind}"


def _take_login(core: Core, kind: str, key: str, browser_key: str | None = None) -> dict[str, Any] | None:
    """The secret part of a login under way, taken out of the database (one use), or None: unknown, expired, of
    another kind, or (browser) started in another browser."""
    with core.db.transaction() as s:
        row = s.scalar(select(SsoLogin).where(SsoLogin.key_hash == authz.token_hash(key)).with_for_update())
        if row is None or row.kind != kind:
            return None
        if kind == "browser" and row.browser_hash != authz.token_hash(browser_key or ""):
            return None  # another browser's state: leave it for its own browser
        opened = json.loads(core.barrier.open(s, row.sealed, _aad(row)))
        expired = row.expires_at <= utcnow()
        s.delete(row)
        return None if expired else dict(opened)


def finish_browser(core: Core, state: str, code: str, error: str | None, browser_key: str, client: str | None
                   ) -> tuple[Actor, str]:
    """The user the provider signed in, and where to go next; ``SsoRefused`` (audited) otherwise."""
    try:
        if error:
            raise SsoRefused("provider_error", f"the identity provider answered {error[:100]!r}")
        login = _take_login(core, "browser", state, browser_key) if state else None
        if login is None:
            raise SsoRefused("bad_state", "this sign-in was not started here, was already used, or is too old; "
                                          "sign in again")
        if not code:
            raise SsoRefused("no_code", "the identity provider sent no authorization code")
        status, body = _token_request(core, {"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": login["redirect_uri"],
                                             "code_verifier": login["verifier"]})
        if status != 200 or not isinstance(body.get("id_token"), str):
            raise SsoRefused("code_rejected", f"the identity provider refused the code "
                                              f"({str(body.get('error', status))[:60]})")
        claims = verify_id_token(core, body["id_token"], login["nonce"])
        actor = _sign_in(core, claims, client, via="browser")
        return actor, str(login["next"])
    except SsoRefused as exc:
        _record_failure(core, exc, client)
        raise


# --- the CLI: device authorization grant ----------------------------------------------------------------------
def begin_device(core: Core, client: str | None) -> dict[str, Any]:
    """Ask the provider for a device code; the CLI gets what to show the person and a handle to poll with."""
    settings = core.settings
    meta = metadata(core)
    endpoint = meta.get("device_authorization_endpoint")
    if not endpoint:
        raise RuleViolation("the identity provider offers no device authorization (RFC 8628)",
                            code="sso_device_unsupported")
    try:
        resp = httpx.post(str(endpoint), data={"scope": settings.oidc_scopes}, timeout=HTTP_TIMEOUT,
                          auth=(settings.oidc_client_id or "", settings.oidc_client_secret or ""))
        got = resp.json()
    except (httpx.HTTPError, ValueError):
        raise SsoUnavailable("the identity provider's device authorization did not answer; try again") from None
    if resp.status_code != 200 or not isinstance(got, dict) or "device_code" not in got:
        raise SsoUnavailable("the identity provider refused to start a device sign-in")
    handle = generate_token(43)
    expires_in = min(int(got.get("expires_in") or LOGIN_SECONDS), LOGIN_SECONDS)
    interval = max(int(got.get("interval") or 5), 1)
    with core.db.transaction() as s:
        s.execute(delete(SsoLogin).where(SsoLogin.expires_at <= utcnow()))
        row = SsoLogin(kind="device", key_hash=authz.token_hash(handle), sealed="",
                       expires_at=utcnow() + timedelta(seconds=expires_in))
        s.add(row)
        s.flush()
        row.sealed = core.barrier.seal(s, json.dumps({"device_code": got["device_code"]}), _aad(row))
    return {"handle": handle, "user_code": got.get("user_code"), "verification_uri": got.get("verification_uri"),
            "verification_uri_complete": got.get("verification_uri_complete"), "expires_in": expires_in,
            "interval": interval}


def poll_device(core: Core, handle: str, client: str | None) -> dict[str, Any] | None:
    """The credflow token of a device sign-in that is done (None while the person has not signed in yet).
    ``SsoRefused`` when the handle is unknown or expired, or the person or credflow refused."""
    with core.db.read() as s:
        row = s.scalar(select(SsoLogin).where(SsoLogin.key_hash == authz.token_hash(handle)))
        if row is None or row.kind != "device" or row.expires_at <= utcnow():
            raise SsoRefused("expired_token", "this device sign-in is unknown or has expired; start again")
        device_code = json.loads(core.barrier.open(s, row.sealed, _aad(row)))["device_code"]
    status, body = _token_request(core, {"grant_type": DEVICE_GRANT, "device_code": device_code})
    if status != 200:
        err = str(body.get("error", ""))
        if err in ("authorization_pending", "slow_down"):
            return None
        _take_login(core, "device", handle)
        failure = SsoRefused("access_denied" if err == "access_denied" else "code_rejected",
                             f"the identity provider ended the device sign-in ({err[:60] or status})")
        _record_failure(core, failure, client)
        raise failure
    if _take_login(core, "device", handle) is None:  # another poll got there first
        raise SsoRefused("expired_token", "this device sign-in was already completed")
    try:
        if not isinstance(body.get("id_token"), str):
            raise SsoRefused("invalid_id_token", "the identity provider sent no ID token")
        claims = verify_id_token(core, body["id_token"], None)
        actor = _sign_in(core, claims, client, via="device")
    except SsoRefused as exc:
        _record_failure(core, exc, client)
        raise
    with core.db.transaction() as s:
        made, token = tokens.issue(s, actor.id, "credflow login --sso")
        record(s, actor=actor.label, action="token.create", object_type="api_token", object_id=made.id,
               detail={"user": actor.id, "name": made.name, "expires_at": views.ts(made.expires_at), "via": "sso"})
        return {**tokens.view(made), "token": token, "user": {"id": actor.id, "name": actor.name}}


# --- who the person is -----------------------------------------------------------------------------------------
def _sign_in(core: Core, claims: dict[str, Any], client: str | None, via: str) -> Actor:
    """The user of the verified claims: matched by email, created when allowed, roles re-mapped from groups."""
    settings = core.settings
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SsoRefused("no_email", "the identity provider sent no email address for this person")
    if settings.oidc_require_verified_email and claims.get("email_verified") is not True:
        raise SsoRefused("email_not_verified", "the identity provider has not verified this person's email",
                         email=email)
    groups = claims.get(settings.oidc_groups_claim) or []
    groups = [str(g) for g in groups] if isinstance(groups, list) else [str(groups)]
    with core.db.transaction() as s:
        user = s.scalar(select(User).where(func.lower(User.email) == email.lower(), User.removed_at.is_(None)))
        created = False
        if user is None:
            if not settings.oidc_auto_create:
                raise SsoRefused("unknown_user", f"{email} has no credflow account; ask an administrator",
                                 email=email)
            user = _create(s, claims, email)
            created = True
        if not authz.is_active(user):
            raise SsoRefused("user_disabled", "this credflow account is disabled", email=email)
        mapped = _map_roles(s, user, groups, role_map(settings))
        record(s, actor=f"user:{user.id}", action="auth.sso_signin", object_type="user", object_id=user.id,
               detail={"email": email, "via": via, "client": client, "created": created, "groups": groups[:50],
                       "roles": mapped})
        return Actor(kind="user", id=user.id, org_id=user.org_id, name=user.name)


def _create(s: Session, claims: dict[str, Any], email: str) -> User:
    org_id = s.scalar(select(Organization.id).order_by(Organization.created_at, Organization.id).limit(1))
    if org_id is None:
        raise Conflict("credflow has no organization yet", code="no_organization")
    name = claims.get("name") or claims.get("preferred_username") or email.split("@")[0]
    user = User(org_id=org_id, name=str(name)[:200], email=email)
    s.add(user)
    s.flush()
    return user


def _map_roles(s: Session, user: User, groups: list[str], mapping: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Set the user's roles in the environments the role map names from its groups now (the strongest role a
    group gives), taking away a mapped environment's role that no group gives any more. Other environments keep
    what an administrator set."""
    if not mapping:
        return {}
    order = {EnvironmentRole.BASIC_USER: 0, EnvironmentRole.ENVIRONMENT_MAKER: 1,
             EnvironmentRole.SYSTEM_ADMINISTRATOR: 2}
    envs: dict[str, str] = {}
    for roles in mapping.values():
        for ref in roles:
            env = s.get(Environment, ref)
            if env is None or env.org_id != user.org_id:
                env = s.scalar(select(Environment).where(Environment.org_id == user.org_id, Environment.name == ref))
            if env is not None:
                envs[ref] = env.id
    wanted: dict[str, str | None] = {env_id: None for env_id in envs.values()}
    for group in groups:
        for ref, role in mapping.get(group, {}).items():
            env_id = envs.get(ref)
            held = wanted.get(env_id) if env_id else None
            if env_id and (held is None or order[EnvironmentRole(role)] > order[EnvironmentRole(held)]):
                wanted[env_id] = role
    return users.apply_roles(s, user, wanted)


def _record_failure(core: Core, exc: SsoRefused, client: str | None) -> None:
    try:
        with core.db.transaction() as s:
            record(s, actor="anonymous", action="auth.sso_failed",
                   detail={"reason": exc.reason, "detail": exc.detail[:300], "client": client,
                           **({"email": str(exc.extra["email"])[:320]} if "email" in exc.extra else {})})
    except Exception:  # a failure to audit never turns a refused sign-in into a 500
        log.exception("could not record a refused single sign-on")
