"""Kubernetes check: kube-proxy's healthCheckNodePort says whether this node has ready endpoints.

For a Service with ``externalTrafficPolicy: Local``, kube-proxy serves plain HTTP on every node at the
Service's healthCheckNodePort: 200 while the node has local ready endpoints, 503 while it has none (or
kube-proxy itself is unhealthy). The body is ``{"service": {"namespace": "default", "name": "web"},
"localEndpoints": 2, "serviceProxyHealthy": true}`` and the count comes again in the header
``X-Load-Balancing-Endpoint-Weight``. Cloud load balancers only use 200/503 to pick nodes; we also
take the count as the node's weight, so a node with four pods gets four times a one-pod node's share.
"""

import json

from anycastlb.health.probes.http import Answer, fetch
from anycastlb.health.probes.outcome import Progress
from anycastlb.health.result import ProbeResult
from anycastlb.model.config import HealthCheck, ProxyProtocolVersion

__all__ = ["WEIGHT_HEADER", "probe_k8s"]

WEIGHT_HEADER = b"x-load-balancing-endpoint-weight"  # h11 lower-cases header names


async def probe_k8s(
    check: HealthCheck, address: str, port: int, proxy_protocol: ProxyProtocolVersion, progress: Progress
) -> ProbeResult:
    """``proxy_protocol`` is ignored: kube-proxy's health port never takes a PROXY header."""
    del proxy_protocol
    answer = await fetch(address, port, progress, path=check.path, host=check.host, tls=check.tls)
    local, proxy_healthy = _kube_proxy_body(answer.body)
    if answer.status == 200:
        weight = _header_weight(answer)
        weight = local if weight is None else weight
        if weight is None:
            return progress.verdict(True, "HTTP 200")
        if weight == 0:
            return progress.verdict(False, "HTTP 200, no local endpoints")
        return progress.verdict(True, f"HTTP 200, {_endpoints(weight)}", weight)
    if answer.status == 503:
        if not local:
            return progress.verdict(False, "HTTP 503, no local endpoints")
        why = ", kube-proxy not healthy" if proxy_healthy is False else ""
        return progress.verdict(False, f"HTTP 503 with {_endpoints(local)}{why}")
    return progress.verdict(False, f"HTTP {answer.status}")


def _header_weight(answer: Answer) -> int | None:
    value = answer.header(WEIGHT_HEADER)
    return int(value) if value is not None and value.isdigit() and len(value) <= 6 else None


def _kube_proxy_body(body: bytes) -> tuple[int | None, bool | None]:
    """localEndpoints and serviceProxyHealthy, each None when absent or not what kube-proxy writes."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8) or absurdly nested: no count
        return None, None
    if not isinstance(document, dict):
        return None, None
    local = document.get("localEndpoints")
    healthy = document.get("serviceProxyHealthy")
    return (
        local if type(local) is int and local >= 0 else None,
        healthy if isinstance(healthy, bool) else None,
    )


def _endpoints(count: int) -> str:
    return f"{count} local endpoint{'' if count == 1 else 's'}"
