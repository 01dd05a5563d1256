"""FastAPI dependencies: the runtime and the caller (``Authorization: Bearer <token>``)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from anycastlb.control.api.runtime import Runtime
from anycastlb.control.errors import Unauthorized
from anycastlb.control.principal import Principal
from anycastlb.control.tokens import same_secret

__all__ = ["Caller", "Rt", "principal_of"]

_bearer = HTTPBearer(auto_error=False, description="The admin token, a tenant API token or a PoP credential")


async def _runtime(request: Request) -> Runtime:  # async: no worker-thread hop for a lookup
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _caller(
    runtime: Annotated[Runtime, Depends(_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        if runtime.admin_token is None:  # --insecure-dev: an anonymous caller is the admin
            return Principal("admin", "admin")
        raise Unauthorized("no token: send the header 'Authorization: Bearer <token>'")
    return await principal_of(runtime, credentials.credentials)


async def principal_of(runtime: Runtime, secret: str) -> Principal:
    """Who a secret belongs to (the status page's cookie holds one too); Unauthorized if nobody."""
    if runtime.admin_token is not None and same_secret(secret, runtime.admin_token):
        return Principal("admin", "admin")
    hit, found = runtime.cached_principal(secret)
    if not hit:
        found = await run_in_threadpool(runtime.authenticate, secret)
    if found is None:
        raise Unauthorized("unknown or revoked token")  # the CLI adds which variable to fix
    if found.expired(datetime.now(UTC)):
        raise Unauthorized(found.expired_message())
    return found.principal


Rt = Annotated[Runtime, Depends(_runtime)]
Caller = Annotated[Principal, Depends(_caller)]
