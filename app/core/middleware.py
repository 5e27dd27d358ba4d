"""Pure ASGI middleware: locale selection and security headers."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.i18n import SUPPORTED_LOCALES, set_locale

LOCALE_COOKIE = "lang"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"geolocation=(), microphone=(), camera=(self)"),
]


def _accept_language(value: str) -> str | None:
    for part in value.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in SUPPORTED_LOCALES:
            return code
    return None


class LocaleMiddleware:
    """Pick the locale: ``?lang=``, then the ``lang`` cookie, then the default (French first).

    The browser's Accept-Language is deliberately consulted only when configured, because the
    product speaks French first to every visitor.
    """

    def __init__(self, app: ASGIApp, *, default_locale: str) -> None:
        self.app = app
        self.default_locale = default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            locale = self.default_locale
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            cookie_header = dict(scope["headers"]).get(b"cookie", b"").decode("latin-1")
            cookie = SimpleCookie()
            try:
                cookie.load(cookie_header)
            except Exception:  # a malformed Cookie header must not break the page
                cookie = SimpleCookie()
            remember = False
            if query.get("lang", [""])[0] in SUPPORTED_LOCALES:
                locale = query["lang"][0]
                # A link that names its language keeps it for the next pages too.
                remember = (
                    cookie.get(LOCALE_COOKIE) is None or cookie[LOCALE_COOKIE].value != locale
                )
            elif LOCALE_COOKIE in cookie and cookie[LOCALE_COOKIE].value in SUPPORTED_LOCALES:
                locale = cookie[LOCALE_COOKIE].value
            set_locale(locale)
            scope.setdefault("state", {})["locale"] = locale
            if remember:
                await self.app(scope, receive, _with_locale_cookie(send, locale))
                return
        await self.app(scope, receive, send)


def _with_locale_cookie(send: Send, locale: str) -> Send:
    async def send_with_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            cookie = f"{LOCALE_COOKIE}={locale}; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax"
            message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
        await send(message)

    return send_with_cookie


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimitMiddleware:
    """Refuse request bodies over a limit with 413, before anything reads them.

    Uploads of the registry get a larger allowance; everything else (forms, answers, API) is
    small by nature, and a huge body is either a mistake or an attack.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int,
        upload_limit: int,
        upload_prefixes: tuple[str, ...],
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_prefixes = upload_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.upload_limit if path.startswith(self.upload_prefixes) else self.default_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail": "Request body too large (limit {limit} bytes)."}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
