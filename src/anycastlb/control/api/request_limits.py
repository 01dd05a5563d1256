"""Request limits applied before a route parses anything: the body's size, and the spec bounds
that :class:`~anycastlb.model.desired.LoadBalancerSpec` checks before validating backends.

Body size: a ``Content-Length`` above the limit is answered 413 at once, without reading a byte of
the body; a body without one (chunked) is counted as it streams in, and the 413 goes out as soon
as the count passes the limit. In both cases the answer closes the connection (``Connection:
close``), so the rest of the body is never read. The route then sees a client disconnect and
whatever it tries to answer is dropped. A plain ASGI middleware, like ``_RequestMetrics``.
"""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anycastlb.control.limits import Limits
from anycastlb.model.bounds import spec_bounds

__all__ = ["RequestLimits"]


class RequestLimits:
    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.bounds = limits.spec_bounds

    def _refusal(self, what: str) -> bytes:
        limit = self.limits.max_body_bytes
        detail = f"the request body is {what}; the limit is {limit:,} bytes ({self.limits.body_hint()})"
        return json.dumps({"detail": detail}).encode()

    async def _refuse(self, send: Send, what: str) -> None:
        body = self._refusal(what)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, f"{int(value):,} bytes (Content-Length)")
                return
        received = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._refuse(send, f"over {limit:,} bytes (counted as it streamed in)")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after a 413, the route's own answer has nowhere to go
                await send(message)

        token = spec_bounds.set(self.bounds)
        try:
            await self.app(scope, counted_receive, guarded_send)
        finally:
            spec_bounds.reset(token)
