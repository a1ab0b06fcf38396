"""The web app's guard: which browser a Gradio session belongs to, and who may upload.

Gradio keeps each tab's server-side state (a signed-in teacher's or student's Principal,
say) under a `session_hash` that the browser itself makes up and sends in URLs and request
bodies; anyone who learns it could act as that tab. This ASGI middleware gives every
browser a server-issued, HttpOnly cookie (a random id signed with a key of this process)
and binds each session_hash to the browser that first used it: the same session_hash from
another browser, or from a client without the cookie, is refused (403). A binding is
forgotten only when Gradio no longer holds its session's state.

It also decides who may upload: only a browser that holds the cookie and has opened a
session (every page does, at once, by its heartbeat), at most UPLOAD_RATE megabytes a
minute per address; Gradio's own `max_file_size` (ui.app.MAX_UPLOAD) bounds each file. A
script that loads the page first still gets both, so this bounds what an anonymous client
can put on disk; it does not stop one (docs/compliance.md says what is left).

And it deletes a teacher's export (ui.media.export_file) as soon as it has been downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import math
import secrets
import time
from collections import OrderedDict
from urllib.parse import parse_qs, unquote

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from ui.media import forget, is_export

COOKIE = "attune_client"
UPLOAD_RATE = "32/minute"  # megabytes of uploads per address
MAX_SESSIONS = 100_000  # session_hash bindings remembered; Gradio keeps 10,000 sessions' state
MAX_JSON_BODY = 32 * 1024 * 1024  # bytes of a JSON request read to find its session_hash
MB = 1024 * 1024


class ClientGuard:
    """ASGI middleware (pass to Starlette/FastAPI as `Middleware(ClientGuard)`)."""

    def __init__(self, app, *, upload_rate: str = UPLOAD_RATE, max_sessions: int = MAX_SESSIONS):
        self.app = app
        self.key = secrets.token_bytes(32)
        self.owners: OrderedDict[str, str] = OrderedDict()  # session_hash -> client id
        self.active: OrderedDict[str, None] = OrderedDict()  # client ids with a session
        self.max_sessions = max_sessions
        self.upload_rate = parse(upload_rate) if upload_rate else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    # ------------------------------------------------------------ the cookie
    def _sign(self, token: str) -> str:
        mac = hmac.new(self.key, token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self) -> str:
        token = secrets.token_urlsafe(24)
        return f"{token}.{self._sign(token)}"

    def verify(self, value: str | None) -> str | None:
        """The client id in a cookie this process issued, else None."""
        token, _, mac = (value or "").partition(".")
        if token and mac and hmac.compare_digest(mac, self._sign(token)):
            return token
        return None

    # ------------------------------------------------------------ sessions
    def _bind(self, session_hash: str, client: str, held) -> bool | None:
        """Bind `session_hash` to `client` on first sight. False when another client has it;
        None when no binding can be made room for (every old one's session is still held)."""
        owner = self.owners.get(session_hash)
        if owner is None:
            if len(self.owners) >= self.max_sessions and not self._make_room(held):
                return None
            self.owners[session_hash] = owner = client
        if owner != client:
            return False
        self.owners.move_to_end(session_hash)  # least recently used first out
        self.active[client] = None
        self.active.move_to_end(client)
        if len(self.active) > self.max_sessions:
            self.active.popitem(last=False)
        return True

    def _make_room(self, held, look: int = 64) -> bool:
        """Forget the least recently used bindings whose sessions Gradio no longer holds
        (`held`: its session states by session_hash). A binding whose state Gradio still
        holds is never forgotten: someone could otherwise flood the guard with new sessions
        until a signed-in teacher's is forgotten, then take it over."""
        for session_hash in list(itertools.islice(self.owners, look)):
            if len(self.owners) < self.max_sessions:
                break
            if session_hash not in held:
                del self.owners[session_hash]
        return len(self.owners) < self.max_sessions

    # ------------------------------------------------------------ ASGI
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        presented = self.verify(cookie_parser(headers.get("cookie", "")).get(COOKIE))
        client, new_cookie = presented, None
        if client is None:
            new_cookie = self.issue()
            client = self.verify(new_cookie)
        path = scope["path"]
        api = path.split("/gradio_api/", 1)[1] if "/gradio_api/" in path else None

        if api is not None:
            if api.startswith("upload") and scope["method"] == "POST":
                refusal = self._upload_refusal(scope, headers, presented)
                if refusal:
                    return await _refuse(send, *refusal)
            if api.startswith("file=") and presented is None:
                return await _refuse(send, 403, "Files are served only to the page that asked "
                                                "for them; reload the page.")
            body = None
            if scope["method"] == "POST" and "json" in headers.get("content-type", ""):
                body = await _read_body(receive, MAX_JSON_BODY)
                if body is None:
                    return await _refuse(send, 413, "That request is too large.")
            held = getattr(getattr(scope.get("app"), "state_holder", None), "session_data", {})
            for session_hash in _session_hashes(api, scope, body):
                bound = self._bind(session_hash, client, held)
                if bound is None:
                    return await _refuse(send, 503, "Too many open sessions; try again soon.", 30)
                if not bound:
                    return await _refuse(send, 403, "This session belongs to another browser "
                                                    "window; reload the page.")
            if body is not None:
                receive = _replay(body, receive)
            if api.startswith("file=") and scope["method"] == "GET":
                send = _delete_export_after(unquote(api[len("file="):]), send)

        if new_cookie is not None:
            send = _with_cookie(send, new_cookie, secure=_is_https(scope, headers))
        await self.app(scope, receive, send)

    def _upload_refusal(self, scope, headers: Headers, client: str | None):
        if client is None or client not in self.active:
            return 403, "Uploads are taken only from an open page of this app; reload the page."
        if self.upload_rate is None:
            return None
        length = headers.get("content-length")
        if length is None or not length.isdigit():
            return 411, "An upload must say its length."
        address = scope["client"][0] if scope.get("client") else "unknown"
        cost = max(1, math.ceil(int(length) / MB))
        if not self.limiter.hit(self.upload_rate, "upload", address, cost=cost):
            reset = self.limiter.get_window_stats(self.upload_rate, "upload", address).reset_time
            return 429, "Too many uploads; wait a minute.", max(1, math.ceil(reset - time.time()))
        return None


def client_address(request) -> str | None:
    """The address a Gradio request came from (a gr.Request), for per-client limits."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) if client is not None else None


def _session_hashes(api: str, scope, body: bytes | None):
    """Every session_hash a Gradio request names: in its query, its path, its JSON body."""
    for value in parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", []):
        yield value
    parts = api.split("/")
    if parts[0] == "heartbeat" and len(parts) > 1:
        yield parts[1]
    if parts[0] == "stream" and len(parts) > 3:  # stream/{session_hash}/{run}/{component}/...
        yield parts[1]
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            return
        if isinstance(data, dict) and isinstance(data.get("session_hash"), str):
            yield data["session_hash"]


async def _read_body(receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _is_https(scope, headers: Headers) -> bool:
    return scope.get("scheme") == "https" or headers.get("x-forwarded-proto", "") == "https"


def _with_cookie(send, value: str, *, secure: bool):
    cookie = f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")

    async def wrapped(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []),
                                               (b"set-cookie", cookie.encode("latin-1"))]}
        await send(message)

    return wrapped


def _delete_export_after(path: str, send):
    """`send`, deleting `path` if it is an export, once the whole file has been read for a
    200 response (before its last part goes out, so the client never sees it still there)."""
    if not is_export(path):
        return send
    status = 0

    async def wrapped(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        if (message["type"] == "http.response.body" and not message.get("more_body", False)
                and status == 200):
            forget(path)
        await send(message)

    return wrapped


async def _refuse(send, status: int, detail: str, retry_after: int | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
