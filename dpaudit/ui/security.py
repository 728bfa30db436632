"""The web UI's guards: the access token, CSRF, request-size limits, security headers, safe names and paths.

* **Token.** Every page but ``/static/*`` and a run's public ``summary.json`` needs the token that ``dpaudit ui``
  prints (generated, or ``--token`` / ``DPAUDIT_UI_TOKEN``): as ``?token=`` once (it is then kept in an
  ``HttpOnly``, ``SameSite=Strict`` cookie), or ``Authorization: Bearer``. Without it: 401. A loopback bind
  needs it too (every local user can reach 127.0.0.1).
* **CSRF.** Every POST carries the ``csrf`` form field equal to the ``dpaudit_csrf`` cookie (double submit,
  compared in constant time) and, when the browser sends one, an ``Origin`` of this server: else 403.
* **Size.** A POST needs a ``Content-Length`` (411) of at most the upload limit plus 1 MiB of form (413);
  the body is counted as it arrives and cut off past its declared length.
* **Headers.** A strict CSP (scripts and styles from ``/static`` only), ``X-Frame-Options: DENY``,
  ``nosniff``, ``Referrer-Policy: same-origin`` (so that a form POST carries its ``Origin``), ``no-store``.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

SESSION_COOKIE = "dpaudit_session"
CSRF_COOKIE = "dpaudit_csrf"
TOKEN_ENV = "DPAUDIT_UI_TOKEN"
FORM_OVERHEAD = 1 << 20  # bytes of form fields allowed beside the largest upload
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'")
#: The rendered report, shown in a sandboxed frame of this site: no script, no network, only its own styles.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
_PUBLIC = re.compile(r"^/(static/[A-Za-z0-9._-]+|runs/[A-Za-z0-9._-]+/summary\.json)$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two non-empty strings."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def safe_filename(name: str, *, default: str) -> str:
    """A client's file name reduced to ``[A-Za-z0-9._-]``, no leading dot, ≤ 80 characters (``default`` if
    nothing is left); the extension is kept."""
    base = Path(str(name).replace("\\", "/")).name
    clean = _SAFE_NAME.sub("_", base).lstrip("._-")[-80:]
    return clean or default


def under_roots(text: str, roots: list[Path]) -> Path:
    """``text`` resolved (symbolic links followed) when it lies inside one of ``roots``; else ``ValueError``
    with one line naming the roots (``..`` and links out of a root are refused the same way)."""
    try:
        path = Path(text).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError(f"'{text}' does not exist; give a path inside {_roots(roots)}.") from None
    if not any(path.is_relative_to(r.resolve()) for r in roots):
        raise ValueError(f"'{text}' is outside the allowed roots {_roots(roots)}; start `dpaudit ui --allow-root "
                         "DIR` to allow another folder.")
    return path


def _roots(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots) or "(none)"


def authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    bearer = header[7:] if header.lower().startswith("bearer ") else None
    return same(request.cookies.get(SESSION_COOKIE), token) or same(bearer, token)


def check_csrf(request: Request, form) -> str | None:
    """``None`` when the POST may proceed, else the reason it is refused (403)."""
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        return "cross-origin request refused"
    if not same(form.get("csrf"), request.cookies.get(CSRF_COOKIE)):
        return "missing or wrong CSRF token; reload the page and submit again"
    return None


def csrf_token(request: Request) -> str:
    """The request's CSRF cookie value, or a new one (set on the response by :class:`Guard`)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token):
        state = request.scope.setdefault("state", {})
        token = state.setdefault("new_csrf", secrets.token_urlsafe(24))
    return token


class Guard:
    """ASGI middleware: token, size limits and headers on every request (see the module docstring)."""

    def __init__(self, app, *, token: str, max_body: int) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        early = self._refusal(request)
        if early is not None:
            return await self._send(early, scope, receive, send)
        declared = int(request.headers.get("content-length") or 0)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > declared:
                raise ValueError("request body longer than its Content-Length")
            return message

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = _headers(message.get("headers", []), request)
            await send(message)

        await self.app(scope, counted, with_headers)

    def _refusal(self, request: Request) -> Response | None:
        token = request.query_params.get("token")
        if request.method == "GET" and token is not None:
            if not same(token, self.token):
                return PlainTextResponse("wrong token", status_code=401)
            redirect = RedirectResponse(request.url.path, status_code=303)
            redirect.set_cookie(SESSION_COOKIE, self.token, httponly=True, samesite="strict")
            return redirect
        if not _PUBLIC.match(request.url.path) and not authorized(request, self.token):
            return PlainTextResponse("401: open the address `dpaudit ui` printed (it carries the access token), or "
                                     "send Authorization: Bearer TOKEN.", status_code=401)
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return PlainTextResponse("a POST needs a Content-Length", status_code=411)
            if int(length) > self.max_body:
                return PlainTextResponse(f"request too large: {int(length)} bytes, at most {self.max_body}; "
                                         "upload a smaller file", status_code=413)
        return None

    async def _send(self, response: Response, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = _headers(message.get("headers", []), Request(scope))
            await send(message)

        await response(scope, receive, with_headers)


def _headers(raw: list, request: Request) -> list:
    names = {k.lower() for k, _ in raw}
    out = list(raw)
    defaults = {b"content-security-policy": CSP.encode(), b"x-frame-options": b"DENY",
                b"x-content-type-options": b"nosniff", b"referrer-policy": b"same-origin",
                b"cache-control": b"no-store", b"cross-origin-opener-policy": b"same-origin"}
    for key, value in defaults.items():
        if key not in names:
            out.append((key, value))
    new_csrf = (request.scope.get("state") or {}).get("new_csrf")
    if new_csrf:
        out.append((b"set-cookie", f"{CSRF_COOKIE}={new_csrf}; HttpOnly; Path=/; SameSite=Strict".encode()))
    return out
