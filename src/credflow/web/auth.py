"""Web sessions, CSRF tokens and sign-in throttling.

A session lives in the database (``services.access.sessions``): the cookie holds a random secret, the database its
SHA-256. Sign-out, a password change, and a disabled or removed user end it on every server process and across
restarts. The cookie is HttpOnly, SameSite=Lax and Secure when the request came over https. Each session has its
own CSRF token (an HMAC of its secret, keyed from the master key), checked on every POST. Before sign-in, a
pre-session cookie plays that role for the sign-in form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from credflow.crypto.envelope import Keyring
from credflow.services.access import sessions
from credflow.services.core import Actor, Core

SESSION_COOKIE = "credflow_session"
PRESESSION_COOKIE = "credflow_presession"
SESSION_SECONDS = sessions.SESSION_SECONDS
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No valid session: the page sends the person to sign in."""


class PasswordChangeRequired(Exception):
    """The user signed in with a first password set by an administrator and must choose their own."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class SessionCodec:
    """The CSRF tokens of sessions and pre-sessions: HMACs keyed from the active master key."""

    keyring: Keyring

    def _key(self) -> bytes:
        return hmac.new(self.keyring.key(self.keyring.active_id), b"credflow/web-session/v1", hashlib.sha256).digest()

    def csrf(self, secret: str) -> str:
        return _b64(hmac.new(self._key(), f"csrf|{secret}".encode(), hashlib.sha256).digest())


@dataclass
class Throttle:
    """Failed sign-ins per key in a sliding window; a key with ``limit`` failures in the window is refused."""

    limit: int = 5
    window: float = 60.0
    failures: dict[str, deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self.failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again (0: now)."""
        now = time.monotonic()
        with self.lock:
            q = self._recent(key, now)
            return int(q[0] + self.window - now) + 1 if len(q) >= self.limit else 0

    def fail(self, key: str) -> None:
        now = time.monotonic()
        with self.lock:
            if len(self.failures) > 10_000:
                for k in [k for k, q in self.failures.items() if not q or q[-1] <= now - self.window]:
                    del self.failures[k]
            self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        with self.lock:
            self.failures.pop(key, None)


@dataclass
class WebState:
    codec: SessionCodec
    # email and client address; one address, whatever it tries, is limited by services.access.failed_auth
    per_account: Throttle = field(default_factory=Throttle)


@dataclass
class WebUser:
    actor: Actor
    name: str
    email: str
    must_change_password: bool
    session_id: str
    csrf: str


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def core_of(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def start_session(request: Request, response: Response, user_id: str, via: str = "password") -> None:
    secret = sessions.start(core_of(request), user_id, via, client_address(request),
                            request.headers.get("user-agent"))
    set_cookie(request, response, SESSION_COOKIE, secret, SESSION_SECONDS)


def end_session(request: Request, response: Response) -> None:
    sessions.end(core_of(request), request.cookies.get(SESSION_COOKIE, ""))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")


def session_user(request: Request) -> WebUser | None:
    secret = request.cookies.get(SESSION_COOKIE, "")
    if len(secret) < 32:
        return None
    info = sessions.find(core_of(request), secret)
    if info is None:
        return None
    actor = Actor(kind="user", id=info["id"], org_id=info["org_id"], name=info["name"])
    return WebUser(actor=actor, name=info["name"], email=info["email"],
                   must_change_password=info["must_change_password"], session_id=info["session_id"],
                   csrf=state(request).codec.csrf(secret))


def _signed_in(request: Request) -> WebUser:
    user = session_user(request)
    if user is None:
        raise SignInRequired()
    request.state.web_user = user
    return user


def signed_in(request: Request) -> WebUser:
    """The signed-in user (any page); one who must change a first password is sent to do that first."""
    user = _signed_in(request)
    if user.must_change_password:
        raise PasswordChangeRequired()
    return user


async def posted(request: Request, user: Annotated[WebUser, Depends(_signed_in)]) -> FormData:
    """The form of a POST whose CSRF token is this session's."""
    form = await request.form()
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    if not hmac.compare_digest(sent.encode(), user.csrf.encode()):
        raise CsrfRejected()
    return form


def presession(request: Request) -> tuple[str, str, bool]:
    """The sign-in form's pre-session cookie value, its CSRF token, and whether the cookie is new."""
    value = request.cookies.get(PRESESSION_COOKIE, "")
    fresh = len(value) < 16
    if fresh:
        value = secrets.token_urlsafe(18)
    return value, state(request).codec.csrf(f"pre|{value}"), fresh


def check_presession(request: Request, form: FormData) -> None:
    value = request.cookies.get(PRESESSION_COOKIE, "")
    expected = state(request).codec.csrf(f"pre|{value}") if len(value) >= 16 else ""
    if not expected or not hmac.compare_digest(str(form.get(CSRF_FIELD) or "").encode(), expected.encode()):
        raise CsrfRejected()


CurrentUser = Annotated[WebUser, Depends(signed_in)]
AnyUser = Annotated[WebUser, Depends(_signed_in)]  # also one who must still change a first password
PostedForm = Annotated[FormData, Depends(posted)]
