"""The edge agent's configuration (``edge.yaml``): listeners, their backends, limits and timeouts.

Validated once by :func:`parse_config`; errors name the field path and say what to change, so an
operator fixing a typo at 3 a.m. does not have to read a traceback. Models are frozen: the data
plane receives them after validation and never mutates or re-checks them.
"""

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from anycastlb.model.base import BindAddress, Frozen, IPAddress, Port, check_name
from anycastlb.model.bgp import BgpConfig
from anycastlb.model.config_file import ConfigError, read_yaml_file
from anycastlb.model.duration import Duration
from anycastlb.model.hostnames import check_hostnames
from anycastlb.model.tunnel import TunnelInterface
from anycastlb.model.validation_errors import without_echoes

__all__ = [
    "Backend",
    "ConfigError",
    "EdgeConfig",
    "HealthCheck",
    "Listener",
    "ListenerSettings",
    "MetricsEndpoint",
    "ProxyProtocolVersion",
    "RelayMode",
    "check_sharers",
    "load_config",
    "parse_config",
]

ProxyProtocolVersion = Literal["none", "v1", "v2"]
RelayMode = Literal["auto", "splice", "copy"]


class Backend(Frozen):
    """A worker node's address and port (a NodePort) that receives forwarded connections."""

    address: IPAddress
    port: Port
    weight: Annotated[int, Field(ge=0, le=1000)] = 1

    @property
    def key(self) -> str:
        """Stable identity used by Maglev and in metric labels: ``10.0.0.11:30443`` / ``[::1]:80``."""
        if self.address.version == 6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


class HealthCheck(Frozen):
    """How a listener's backends are checked (the checkers themselves live in ``anycastlb.health``).

    One field per line, grouped by concern; README.md ("Health checks") explains each with its default.
    """

    # what a probe does
    type: Literal["tcp", "http", "k8s", "none"] = "tcp"  # none: no probes (passive checks still apply)
    port: Port | None = None  # None: the backend's own port (k8s needs the Service's healthCheckNodePort)
    path: str = "/healthz"
    host: str | None = None  # HTTP Host header; default: the backend address
    tls: bool = False  # http: speak HTTPS (no certificate verification: nodes rarely have a public one)
    expect_status: tuple[Annotated[int, Field(ge=100, le=599)], ...] = ()  # () = any 2xx or 3xx
    expect_body: str | None = None  # http: the body must contain this text
    # tcp/http: write a PROXY header first. None (auto): when the check goes to the backend's own port
    # and the listener sends PROXY headers there, since that port then requires one.
    send_proxy: bool | None = None
    # when
    interval: Duration = 0.5
    timeout: Duration = 0.25
    # how much evidence
    rise: Annotated[int, Field(ge=1, le=100)] = 2
    fall: Annotated[int, Field(ge=1, le=100)] = 2
    passive_fall: Annotated[int, Field(ge=0, le=100)] = 1  # failed client connects that eject; 0 = off
    initial: Literal["up", "down"] = "up"

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or any(ch in value for ch in " \r\n"):
            raise ValueError(f"path {value!r} must start with '/' and contain no spaces or line breaks")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "HealthCheck":
        if self.interval < 0.05:
            raise ValueError("interval must be at least 50ms")
        if self.timeout <= 0 or self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout}s) must be > 0 and <= interval ({self.interval}s)")
        if self.type == "k8s" and self.port is None:
            raise ValueError(
                "type k8s needs port: the Service's healthCheckNodePort (spec.healthCheckNodePort)"
            )
        if self.type == "tcp" and (self.expect_status or self.expect_body is not None or self.tls):
            raise ValueError("expect_status, expect_body and tls apply to type http only")
        if self.type == "k8s" and self.send_proxy is True:
            raise ValueError("send_proxy does not apply to type k8s: kube-proxy's health port takes none")
        return self


class ListenerSettings(Frozen):
    """How one port of a load balancer is served: shared by the edge's ``Listener`` and the control
    plane's load balancer spec (``anycastlb.model.desired``), so both tiers validate the same way."""

    port: Port
    protocol: Literal["tcp", "udp"] = "tcp"
    proxy_protocol: ProxyProtocolVersion = "v2"
    backends: tuple[Backend, ...] = ()
    health: HealthCheck = HealthCheck()
    connect_timeout: Duration = 1.0
    idle_timeout: Duration = 300.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    retry_on_reset: bool = True  # a node that resets before answering gets the first bytes replayed
    # TCP Fast Open towards the backends: once a node's kernel gave this PoP a cookie, the PROXY
    # header and the first bytes ride in the SYN (one round trip less). Off by default: the nodes
    # must enable it (net.ipv4.tcp_fastopen server bit, and the ingress listening with fastopen).
    backend_fast_open: bool = False
    # limits, enforced at accept across all workers (dataplane/admission.py); a refusal is a reset
    max_connections: Annotated[int, Field(ge=1)] = 50_000
    max_connections_per_source: Annotated[int, Field(ge=1)] = 1_000
    # new connections per second (token-bucket rate and burst); None = no limit. The burst defaults
    # to one second's worth. Per source is per client address, or per prefix (source_prefix_v4/v6).
    new_connections_per_second: Annotated[float, Field(gt=0)] | None = None
    new_connections_burst: Annotated[int, Field(ge=1)] | None = None
    new_connections_per_second_per_source: Annotated[float, Field(gt=0)] | None = None
    new_connections_burst_per_source: Annotated[int, Field(ge=1)] | None = None
    # what one "source" is for the per-source limits: 24 / 64 count a whole /24 or /64 as one client
    source_prefix_v4: Annotated[int, Field(ge=1, le=32)] = 32
    source_prefix_v6: Annotated[int, Field(ge=1, le=128)] = 128
    backlog: Annotated[int, Field(ge=16, le=65535)] = 4096
    first_data_timeout: Duration = 10.0
    server_speaks_first: bool = False
    sni_authority: bool = True
    client_hello_wait: Duration = 0.2
    # SNI-routed sharing (model/hostnames.py): the TLS server names this listener serves. Several
    # listeners (of several load balancers) may then share one VIP and port: the edge reads the
    # ClientHello's SNI and routes to the listener that names it. ``sni_default``: this listener also
    # takes a ClientHello whose name no sharer claims, or one with no SNI; with none so marked such a
    # connection is refused with a reset.
    hostnames: tuple[str, ...] = ()
    sni_default: bool = False

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_hostnames(value)

    @field_validator("backends")
    @classmethod
    def _unique_backends(cls, value: tuple[Backend, ...]) -> tuple[Backend, ...]:
        seen: set[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]] = set()
        for backend in value:
            identity = (backend.address, backend.port)
            if identity in seen:
                raise ValueError(f"backend {backend.key} is listed twice; merge them and raise its weight")
            seen.add(identity)
        return value

    @model_validator(mode="after")
    def _timeouts(self) -> "ListenerSettings":
        if self.connect_timeout <= 0:
            raise ValueError("connect_timeout must be > 0")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0")
        return self

    @model_validator(mode="after")
    def _sni_routing(self) -> "ListenerSettings":
        if self.sni_default and not self.hostnames:
            raise ValueError("sni_default applies only with hostnames; name the hostnames it serves")
        if self.hostnames and self.protocol != "tcp":
            raise ValueError("hostnames apply to tcp listeners only (the SNI is in a TLS ClientHello)")
        if self.hostnames and self.server_speaks_first:
            raise ValueError(
                "hostnames need the client to speak first (its ClientHello carries the SNI); "
                "remove server_speaks_first"
            )
        return self

    @model_validator(mode="after")
    def _bursts_need_rates(self) -> "ListenerSettings":
        for rate, burst in (
            ("new_connections_per_second", "new_connections_burst"),
            ("new_connections_per_second_per_source", "new_connections_burst_per_source"),
        ):
            if getattr(self, burst) is not None and getattr(self, rate) is None:
                raise ValueError(f"{burst} applies only with {rate}; set {rate} too, or remove {burst}")
        return self


class Listener(ListenerSettings):
    """One VIP:port the PoP accepts on, and where its connections go."""

    name: str
    address: BindAddress  # a VIP; in a standalone edge.yaml also 0.0.0.0 or :: (every address)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "listener name")

    @field_validator("protocol")
    @classmethod
    def _tcp_only_for_now(cls, value: str) -> str:
        if value == "udp":
            raise ValueError("udp listeners are not supported by this data plane yet; use protocol: tcp")
        return value

    @property
    def endpoint(self) -> tuple[str, int, str]:
        """What identifies the socket: a listener whose endpoint is unchanged survives a reload."""
        return (str(self.address), self.port, self.protocol)


class MetricsEndpoint(Frozen):
    """Where Prometheus scrapes the agent."""

    address: BindAddress = ipaddress.IPv4Address("127.0.0.1")
    port: Port = 9100


class EdgeConfig(Frozen):
    """Everything one PoP's edge agent serves."""

    pop: str
    listeners: tuple[Listener, ...] = ()
    metrics: MetricsEndpoint | None = MetricsEndpoint()
    workers: Annotated[int, Field(ge=1, le=256)] = Field(default_factory=lambda: os.cpu_count() or 1)
    drain_timeout: Duration = 30.0
    relay: RelayMode = "auto"
    pipe_size: Annotated[int, Field(ge=4096, le=16 * 1024 * 1024)] = 1024 * 1024
    bgp: BgpConfig | None = None  # announce the VIPs (listener addresses) this PoP can serve
    # WireGuard interfaces to nodes that dial in (model/tunnel.py); backends may be tunnel addresses
    tunnels: tuple[TunnelInterface, ...] = ()

    @field_validator("pop")
    @classmethod
    def _pop(cls, value: str) -> str:
        return check_name(value, "pop")

    @field_validator("listeners")
    @classmethod
    def _unique_listeners(cls, value: tuple[Listener, ...]) -> tuple[Listener, ...]:
        names: set[str] = set()
        endpoints: dict[tuple[str, int, str], list[Listener]] = {}
        for listener in value:
            if listener.name in names:
                raise ValueError(f"listener name {listener.name!r} is used twice; names must be unique")
            names.add(listener.name)
            sharers = endpoints.setdefault(listener.endpoint, [])
            for other in sharers:
                check_sharers(other, listener)
            sharers.append(listener)
        return value

    @model_validator(mode="after")
    def _bgp_vips_are_listeners(self) -> "EdgeConfig":
        if self.bgp is None:
            return self
        addresses = {f"{listener.address}/{listener.address.max_prefixlen}" for listener in self.listeners}
        for vip in self.bgp.vips:
            if vip.prefix not in addresses:
                raise ValueError(
                    f"bgp.vips: {vip.prefix} is not the address of any listener; attributes apply to "
                    "VIPs, which are the listeners' addresses"
                )
        return self


def check_sharers(first: Listener, second: Listener) -> None:
    """Two listeners on one endpoint form a sharing group (SNI routing) only when both name their
    hostnames, no hostname is named by both and at most one takes unmatched connections; the
    ValueError names both listeners and what to change. The data plane's router relies on this: a
    server name then has at most one exact and at most one wildcard owner, and one default."""
    where = f"{first.address} port {first.port}/{first.protocol}"
    without = [listener.name for listener in (first, second) if not listener.hostnames]
    if without:
        raise ValueError(
            f"listeners {first.name!r} and {second.name!r} both bind {where}; to share it give each "
            f"hostnames (SNI routing: {' and '.join(repr(name) for name in without)} "
            f"{'names' if len(without) == 1 else 'name'} none), "
            "or move one to another address or port"
        )
    shared = sorted(set(first.hostnames) & set(second.hostnames))
    if shared:
        raise ValueError(
            f"listeners {first.name!r} and {second.name!r} on {where} both name hostname "
            f"{shared[0]!r}; a server name routes to one listener: remove it from one of them"
        )
    if first.sni_default and second.sni_default:
        raise ValueError(
            f"listeners {first.name!r} and {second.name!r} on {where} both set sni_default; at most "
            "one listener of a shared port takes connections no hostname matches: unset it on one"
        )


def _field_path(location: tuple[int | str, ...], raw: Any) -> str:  # noqa: ANN401 - raw YAML
    """Turn pydantic's ``('listeners', 0, 'port')`` into ``listeners[0] (web-https).port``."""
    parts: list[str] = []
    node: Any = raw
    for item in location:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    label += f" ({node['name']})"
            parts.append(label)
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def parse_config(raw: Any, source: str = "config") -> EdgeConfig:  # noqa: ANN401 - raw YAML
    """Validate a decoded YAML/JSON document; raise :class:`ConfigError` listing every problem."""
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(
            f"{source}: expected a mapping at the top level (pop:, listeners:, ...), found {found}"
        )
    try:
        return EdgeConfig.model_validate(raw)
    except ValidationError as error:
        lines = []
        for problem in without_echoes(error.errors(include_url=False)):
            path = _field_path(tuple(problem["loc"]), raw)
            message = problem["msg"].removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                message = "unknown field (check the spelling; see the configuration reference in README.md)"
            lines.append(f"  {path}: {message}")
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines)) from None


def load_config(path: Path) -> EdgeConfig:
    """Read and validate an ``edge.yaml``; any bad file is a :class:`ConfigError` (see config_file)."""
    return parse_config(read_yaml_file(path), source=str(path))
