"""The ACME lab as data: three namespaces, their cables, and every config file. No I/O.

::

    client (pebble, the ACME client, a TLS client)  10.40.0.2 ──┐ 10.40.0.0/24
                                                                pop (edge: VIP:80, VIP:443, PROXY v2)
    node (nginx: :8080 serves the HTTP-01 token, :8443 TLS)  10.41.0.2 ──┘ 10.41.0.0/24

The question this lab answers is whether an ACME server's HTTP-01 validation and a TLS client
both get through the L4 edge to an ingress node, so it has no router and no BGP (the anycast lab,
:mod:`anycastlb.lab.topology`, proves the routing): the client simply routes everything to the
PoP, which holds the VIP on ``lo``, the way the router would forward it.

Pebble finds the VIP for the test's domain in ``/etc/netns/<client>/hosts``, which ``ip netns exec``
bind-mounts over ``/etc/hosts`` for the programs it starts (iproute2's documented per-namespace
configuration). Go's resolver reads ``/etc/hosts`` before DNS, so the name resolves to the VIP
exactly as public DNS would point it at the VIP, without a DNS server to start, wait for and stop,
and without an AAAA answer that could send pebble elsewhere.
"""

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anycastlb.lab.topology import VIP, Cable, LinkEnd

__all__ = [
    "ACME_PORT",
    "HTTP_NODE_PORT",
    "MANAGEMENT_PORT",
    "METRICS_PORT",
    "TLS_NODE_PORT",
    "AcmeTopology",
    "NodeTls",
    "edge_config",
    "hosts_file",
    "ip_commands",
    "node_nginx_config",
    "pebble_config",
]

ACME_PORT = 14000  # pebble's ACME API (its default), on the client's address
MANAGEMENT_PORT = 15000  # pebble's management API: /roots/0 is the root it issues under
HTTP_NODE_PORT = 8080  # the node's ingress ports behind VIP:80 and VIP:443 (nodePorts in a cluster)
TLS_NODE_PORT = 8443
METRICS_PORT = 9100  # the edge's /metrics, on the PoP namespace's loopback
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"  # RFC 8555 §8.3


@dataclass(frozen=True)
class AcmeTopology:
    """Names and addresses of one ACME lab; ``name`` prefixes its namespaces, so labs can coexist."""

    name: str = "acme"
    domain: str = "shop.anycastlb.test"  # RFC 6761 .test: never a real name
    vip: str = VIP
    client_address: str = "10.40.0.2"
    pop_client_address: str = "10.40.0.1"
    pop_cluster_address: str = "10.41.0.1"
    node_address: str = "10.41.0.2"

    def __post_init__(self) -> None:
        if not (self.name.isascii() and self.name.isalnum() and self.name.islower() and len(self.name) <= 8):
            raise ValueError(f"ACME lab name {self.name!r} must be 1-8 lowercase letters or digits")

    @property
    def client(self) -> str:
        return f"{self.name}-client"

    @property
    def pop(self) -> str:
        return f"{self.name}-pop"

    @property
    def node(self) -> str:
        return f"{self.name}-node"

    def namespaces(self) -> tuple[str, ...]:
        return (self.client, self.pop, self.node)

    @property
    def directory_url(self) -> str:
        return f"https://{self.client_address}:{ACME_PORT}/dir"

    @property
    def roots_url(self) -> str:
        return f"https://{self.client_address}:{MANAGEMENT_PORT}/roots/0"

    def cables(self) -> tuple[Cable, ...]:
        return (
            Cable(
                LinkEnd(self.client, "uplink", (f"{self.client_address}/24",)),
                LinkEnd(self.pop, "client", (f"{self.pop_client_address}/24",)),
            ),
            Cable(
                LinkEnd(self.pop, "cluster", (f"{self.pop_cluster_address}/24",)),
                LinkEnd(self.node, "cluster", (f"{self.node_address}/24",)),
            ),
        )


def ip_commands(topology: AcmeTopology) -> list[list[str]]:
    """The ``ip`` arguments that build the lab from nothing, in order (veth ends made in place)."""
    commands: list[list[str]] = []
    for ns in topology.namespaces():
        commands.append(["netns", "add", ns])
        commands.append(["-n", ns, "link", "set", "lo", "up"])
    for cable in topology.cables():
        a, b = cable.a, cable.b
        veth = ["type", "veth", "peer", "name", b.interface, "netns", b.namespace]
        commands.append(["-n", a.namespace, "link", "add", a.interface, *veth])
        for end in (a, b):
            commands += [["-n", end.namespace, "addr", "add", c, "dev", end.interface] for c in end.addresses]
            commands.append(["-n", end.namespace, "link", "set", end.interface, "up"])
    commands.append(["-n", topology.pop, "addr", "add", f"{topology.vip}/32", "dev", "lo"])
    commands.append(["-n", topology.client, "route", "add", "default", "via", topology.pop_client_address])
    return commands


def hosts_file(topology: AcmeTopology) -> str:
    """``/etc/netns/<client>/hosts``: the domain is the VIP, as public DNS would answer."""
    return f"127.0.0.1 localhost\n{topology.vip} {topology.domain}\n"


def pebble_config(topology: AcmeTopology, certificate: Path, private_key: Path) -> str:
    """Pebble's JSON: its APIs on the client's address, HTTP-01 validated on port 80 (the VIP's)."""
    config = {
        "pebble": {
            "listenAddress": f"{topology.client_address}:{ACME_PORT}",
            "managementListenAddress": f"{topology.client_address}:{MANAGEMENT_PORT}",
            "certificate": str(certificate),
            "privateKey": str(private_key),
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    return json.dumps(config, indent=2) + "\n"


def _listener(name: str, topology: AcmeTopology, port: int, node_port: int) -> dict[str, Any]:
    return {
        "name": name,
        "address": topology.vip,
        "port": port,
        "proxy_protocol": "v2",
        "backends": [{"address": topology.node_address, "port": node_port}],
        # Down until two checks passed: the lab waits for "up" before it sends anything, and :443
        # has nothing listening until the certificate exists.
        "health": {"type": "tcp", "interval": "100ms", "timeout": "100ms", "rise": 2, "initial": "down"},
        "connect_timeout": "500ms",
    }


def edge_config(topology: AcmeTopology) -> dict[str, Any]:
    """The PoP's ``edge.yaml`` data: VIP:80 and VIP:443 to the node, PROXY v2 on both, no BGP."""
    return {
        "pop": topology.pop,
        "workers": 1,
        "drain_timeout": "1s",
        "metrics": {"address": "127.0.0.1", "port": METRICS_PORT},
        "listeners": [
            _listener("http", topology, 80, HTTP_NODE_PORT),
            _listener("https", topology, 443, TLS_NODE_PORT),
        ],
    }


@dataclass(frozen=True)
class NodeTls:
    """The certificate the node serves on its TLS port (what cert-manager puts in the Secret)."""

    fullchain: Path
    key: Path


def node_nginx_config(topology: AcmeTopology, directory: Path, webroot: Path, tls: NodeTls | None) -> str:
    """nginx standing in for ingress-nginx: PROXY protocol on both ports, trusted from the PoP only.

    Port 8080 answers ``/.well-known/acme-challenge/<token>`` from ``webroot`` (cert-manager's solver
    behind ingress-nginx) and redirects everything else to https, as ingress-nginx's ssl-redirect
    does while exempting the challenge path. Port 8443 exists once ``tls`` does, as a Secret's
    certificate appears in ingress-nginx after cert-manager wrote it: a reload (SIGHUP), so nginx
    runs with its master process here (without one, a reload binds the new port but never accepts
    on it), and its worker as root, as the master would otherwise drop to ``nobody``, who cannot
    read a private work dir (pytest's tmp_path is 0700). The access log records what nginx
    believed: ``$remote_addr`` from the PROXY header, ``$realip_remote_addr`` the TCP peer.
    """
    d = directory
    tls_server = ""
    if tls is not None:
        tls_server = f"""
          server {{
            listen {topology.node_address}:{TLS_NODE_PORT} ssl proxy_protocol;
            server_name {topology.domain};
            ssl_certificate {tls.fullchain}; ssl_certificate_key {tls.key};
            ssl_protocols TLSv1.2 TLSv1.3;  # ingress-nginx's default (nginx 1.22's still has TLS 1.0)
            default_type text/plain;
            location / {{ return 200 "tls {topology.domain} client=$remote_addr\\n"; }}
          }}"""
    return textwrap.dedent(f"""
        daemon off; master_process on; worker_processes 1; user root;
        pid {d}/nginx.pid; error_log {d}/error.log notice;
        events {{ worker_connections 256; }}
        http {{
          log_format edge '$remote_addr $realip_remote_addr $server_port $status $request_uri';
          access_log {d}/access.log edge;
          client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
          uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
          set_real_ip_from {topology.pop_cluster_address}/32; real_ip_header proxy_protocol;
          server {{
            listen {topology.node_address}:{HTTP_NODE_PORT} proxy_protocol;
            location {CHALLENGE_PREFIX} {{ root {webroot}; default_type text/plain; }}
            location / {{ return 308 https://$host$request_uri; }}
          }}{tls_server}
        }}
    """)
