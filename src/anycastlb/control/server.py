"""``anycastlb control``: open the store, build the app, serve it with uvicorn."""

import gc
import logging
import os
import sys

import uvicorn

from anycastlb.control.api.app import create_app
from anycastlb.control.api.runtime import Runtime
from anycastlb.control.backend_policy import PlatformAddresses
from anycastlb.control.limits import Limits
from anycastlb.control.store.engine import open_store
from anycastlb.control.tunnels.addressing import TunnelSettings
from anycastlb.logs import json_logs
from anycastlb.model.addresses import AddressError, Network, parse_bind_address, parse_network

__all__ = [
    "ADMIN_TOKEN_ENV",
    "PLATFORM_NETWORKS_ENV",
    "ServerError",
    "parse_listen",
    "platform_addresses",
    "serve",
]

log = logging.getLogger("anycastlb.control")
ADMIN_TOKEN_ENV = "ANYCASTLB_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a secret
PLATFORM_NETWORKS_ENV = "ANYCASTLB_PLATFORM_NETWORKS"  # comma-separated, added to --platform-network
_MIN_ADMIN_TOKEN = 16

_INSECURE_BANNER = """
 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
 !! --insecure-dev: NO ADMIN TOKEN. Any request without a token is the ADMIN.     !!
 !! Anyone who reaches the API ({listen}) can change pools, tenants, load balancers.
 !! Never use this outside a throw-away development machine.                      !!
 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""

_LAB_BANNER = """
 !! --allow-backend-network {networks}: tenants' backends in these networks skip the
 !! backend policy (loopback, link-local, private, platform addresses). Lab and tests only:
 !! on a PoP this lets a tenant's VIP reach the PoP's own services.
"""


class ServerError(RuntimeError):
    """The control plane cannot start; the message says what to change."""


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port_text = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    try:
        address = parse_bind_address(host)
    except AddressError as error:
        raise ServerError(f"--listen {listen!r}: {error}") from None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ServerError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8700 or [::1]:8700")
    return str(address), int(port_text)


def _networks(texts: list[str], option: str) -> tuple[Network, ...]:
    found: list[Network] = []
    for text in texts:
        try:
            found.append(parse_network(text))
        except AddressError as error:
            raise ServerError(f"{option}: {error}") from None
    return tuple(found)


def platform_addresses(host: str, platform: list[str], lab: list[str]) -> PlatformAddresses:
    """What tenants' backends may not be: this process's listen address (unless it is every
    address: then name the hosts with --platform-network), the platform networks from the command
    line and ``ANYCASTLB_PLATFORM_NETWORKS``, and the lab switch's networks."""
    from_env = [part.strip() for part in os.environ.get(PLATFORM_NETWORKS_ENV, "").split(",") if part.strip()]
    listen = parse_bind_address(host)
    return PlatformAddresses(
        control_plane=() if listen.is_unspecified else (listen,),
        platform_networks=_networks(
            [*platform, *from_env], f"--platform-network (or {PLATFORM_NETWORKS_ENV})"
        ),
        lab_networks=_networks(lab, "--allow-backend-network"),
    )


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


def _share_the_interpreter_fairly() -> None:
    """One tenant's largest request must not stall another's writes (issue 11: < 100 ms). Two
    interpreter defaults made it do so, measured with bench/control_stall.py:

    - The cyclic garbage collector. Validating a 5,000-backend spec allocates ~50,000 objects, which
      sets off full collections that scan every object the process holds (FastAPI, pydantic,
      SQLAlchemy: a few hundred thousand) while every thread waits: 80-280 ms pauses. The objects
      that exist once the app is built live as long as the process, so they are frozen out of
      collection here; requests' own garbage is still collected.
    - The GIL's switch interval (5 ms). A thread that validates a big spec keeps the GIL for 5 ms
      at a time, and a small request passes the GIL between the event loop and the thread pool a
      dozen times, so it waited ~5 ms at each hand-over. 1 ms bounds that wait; the cost, more
      frequent switches, is not measurable at the control plane's request rates.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


def serve(
    listen: str,
    database: str,
    *,
    insecure_dev: bool,
    log_level: str,
    limits: Limits | None = None,
    platform_networks: list[str] | None = None,
    allow_backend_networks: list[str] | None = None,
    migrate_schema: bool = True,
    tunnels: TunnelSettings | None = None,
) -> int:
    host, port = parse_listen(listen)
    token = admin_token(insecure_dev)
    platform = platform_addresses(host, platform_networks or [], allow_backend_networks or [])
    if token is None:
        if not json_logs():  # JSON: every line an object; the warning below says the same
            sys.stderr.write(_INSECURE_BANNER.format(listen=listen))
        log.warning("insecure_dev admin_token=none listen=%s", listen)
    if platform.lab_networks:
        networks = ", ".join(str(network) for network in platform.lab_networks)
        if not json_logs():
            sys.stderr.write(_LAB_BANNER.format(networks=networks))
        log.warning("backend_policy_lifted networks=%s (--allow-backend-network: a lab switch)", networks)
    store = open_store(database, migrate_schema=migrate_schema)
    limits = limits or Limits()
    log.info(
        "control_starting listen=%s database=%s limits=%s platform_networks=%s",
        listen,
        store.dialect,
        limits,
        ",".join(str(network) for network in platform.platform_networks) or "none",
    )
    runtime = Runtime(store=store, admin_token=token, limits=limits, platform=platform)
    if tunnels is not None:
        runtime.tunnels = tunnels
    app = create_app(runtime)
    _share_the_interpreter_fairly()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        # JSON logs: uvicorn's lines go through our handler (its own config prints plain text).
        log_config=None if json_logs() else uvicorn.config.LOGGING_CONFIG,
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
