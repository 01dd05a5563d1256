"""``X-Request-Id``: taken from the client when it is a usable id, generated otherwise, answered in
the response header, written into the audit row of any change the request makes and into the
control plane's log lines about it.

Usable: 1-64 visible ASCII characters (no space, no control character), so an id can neither
split a log line nor smuggle a header. Anything else is replaced by a generated id rather than
refused: a tracing header must never stop a change; the answer's header tells the client which id
was used.
"""

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "RequestIdMiddleware", "current_request_id", "usable_request_id"]

HEADER = "X-Request-Id"
_USABLE = re.compile(r"[\x21-\x7e]{1,64}")
_current: ContextVar[str] = ContextVar("anycastlb_request_id", default="-")


def usable_request_id(given: str | None) -> str:
    """The client's id when it is usable, else a new one (32 hex digits)."""
    if given is not None and _USABLE.fullmatch(given):
        return given
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The id of the request being served ("-" outside one). Worker threads see it too: Starlette
    runs sync routes in a copy of the request's context."""
    return _current.get()


class RequestIdMiddleware:
    """A plain ASGI middleware (see app._RequestMetrics for why not BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = usable_request_id(given)
        token = _current.set(request_id)

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, with_header)
        finally:
            _current.reset(token)
