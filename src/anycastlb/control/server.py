"""``anycastlb control``: open the store, build the app, serve it with uvicorn."""

import logging
import os
import sys

import uvicorn

from anycastlb.control.api.app import create_app
from anycastlb.control.api.runtime import Runtime
from anycastlb.control.limits import Limits
from anycastlb.control.store.engine import open_store

__all__ = ["ADMIN_TOKEN_ENV", "ServerError", "parse_listen", "serve"]

log = logging.getLogger("anycastlb.control")
ADMIN_TOKEN_ENV = "ANYCASTLB_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret
_MIN_ADMIN_TOKEN = 16

_INSECURE_BANNER = """
 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
 !! --insecure-dev: NO ADMIN TOKEN. Any request without a token is the ADMIN.     !!
 !! Anyone who reaches the API ({listen}) can change pools, tenants, load balancers.
 !! Never use this outside a throw-away development machine.                      !!
 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""


class ServerError(RuntimeError):
    """The control plane cannot start; the message says what to change."""


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ServerError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8700 or [::1]:8700")
    return host, int(port_text)


def admin_token(insecure_dev: bool) -> str | None:
    token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if token:
        if len(token) < _MIN_ADMIN_TOKEN:
            raise ServerError(
                f"{ADMIN_TOKEN_ENV} is {len(token)} characters; use at least {_MIN_ADMIN_TOKEN} random "
                "characters (e.g. `openssl rand -hex 32`)"
            )
        return token
    if insecure_dev:
        return None
    raise ServerError(
        f"no admin token: set {ADMIN_TOKEN_ENV} (e.g. `export {ADMIN_TOKEN_ENV}=$(openssl rand -hex 32)`), "
        "or pass --insecure-dev on a development machine"
    )


def serve(
    listen: str, database: str, *, insecure_dev: bool, log_level: str, limits: Limits | None = None
) -> int:
    host, port = parse_listen(listen)
    token = admin_token(insecure_dev)
    if token is None:
        sys.stderr.write(_INSECURE_BANNER.format(listen=listen))
        log.warning("insecure_dev admin_token=none listen=%s", listen)
    store = open_store(database)
    limits = limits or Limits()
    log.info("control_starting listen=%s database=%s limits=%s", listen, store.dialect, limits)
    app = create_app(Runtime(store=store, admin_token=token, limits=limits))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=3,  # long polls are cut; PoPs simply poll again
        lifespan="on",
        # httptools (a C parser, a dependency) over h11: measured with bench/control_plane.py,
        # the 50 long polls answered after each change are mostly HTTP parsing and writing.
        # The asyncio loop stays: uvloop is not proven under load here yet.
        http="httptools",
        loop="asyncio",
    )
    uvicorn.Server(config).run()
    store.dispose()
    return 0
