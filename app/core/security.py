"""Passwords, tokens and CSRF: the security primitives every domain uses."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from pwdlib import PasswordHash

from app.core.errors import Forbidden
from app.core.i18n import _

password_hasher = PasswordHash.recommended()  # argon2id with pwdlib's current parameters

CSRF_SESSION_KEY = "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A hash computed on every failed login for unknown accounts, so timing does not reveal
# which e-mail addresses exist.
_DUMMY_HASH = password_hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        password_hasher.verify(password, _DUMMY_HASH)
        return False
    return password_hasher.verify(password, password_hash)


def new_token() -> str:
    """A URL-safe random token (invitation links, CSRF)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are stored hashed: a leaked table gives no usable link."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(secret_key: str, value: str) -> str:
    """A keyed hash for rate-limit buckets: never the raw client address."""
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_SESSION_KEY)
    if not token:
        token = new_token()
        request.session[CSRF_SESSION_KEY] = token
    return str(token)


def is_csrf_exempt(request: Request) -> bool:
    """The JSON API and the public questionnaire are exempt only without a signed-in session.

    CSRF abuses ambient credentials; an anonymous API call has none to abuse.
    """
    anonymous = "user_id" not in request.session
    # The public questionnaire: citizens are anonymous and hold no credential a forged request
    # could borrow; abuse is handled by rate limits, validation and the honeypot instead.
    # The opt-out links: mail clients POST there themselves (RFC 8058 one-click), with no
    # page of ours before; the secret token in the path is the proof.
    return anonymous and request.url.path.startswith(("/api/", "/s/", "/optout/"))


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: every state-changing request must prove it came from our pages."""
    if request.method not in UNSAFE_METHODS or is_csrf_exempt(request):
        return
    expected = request.session.get(CSRF_SESSION_KEY)
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FORM_FIELD)
            supplied = value if isinstance(value, str) else None
    if not expected or not supplied or not secrets.compare_digest(str(expected), supplied):
        raise Forbidden(
            _("The form has expired or did not come from this site. Reload the page and retry.")
        )
