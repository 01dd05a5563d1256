"""The controller's client of the control plane: ensure and delete load balancers of its tenant."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from anycastlb.model.desired import LoadBalancerSpec

__all__ = ["ControlClient", "ControlError", "EnsuredLoadBalancer", "HeldLoadBalancer", "TunnelNodes"]

log = logging.getLogger("anycastlb.k8s")


class ControlError(Exception):
    """The control plane refused (``status`` 4xx, a message that says why) or could not be reached
    (``status`` None): the Service keeps its status, the key is retried with backoff."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class EnsuredLoadBalancer:
    name: str
    version: int
    addresses: tuple[str, ...]
    created: bool


@dataclass(frozen=True, slots=True)
class HeldLoadBalancer:
    """A load balancer as the control plane holds it, without its spec."""

    version: int
    spec_digest: str | None  # LoadBalancerSpec.digest() of the spec it holds (None: not known yet)
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TunnelNodes:
    """The cluster's nodes as the control plane registered them (``PUT …/clusters/{c}/nodes``)."""

    version: int
    backend_addresses: dict[str, tuple[str, ...]]  # node -> its tunnel address(es), current first
    rotation_ends: tuple[datetime, ...]  # when a rotated node's previous address goes


class ControlClient:
    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
        self.tenant: str | None = None

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            raise ControlError(f"control plane {self.url} unreachable: {error!r}") from None
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text[:200]
            raise ControlError(detail, response.status_code)
        return response

    async def whoami(self) -> str:
        """The tenant of our token (a PoP or the admin token is refused: wrong credential)."""
        body = (await self._call("GET", "/v1/whoami")).json()
        if body.get("kind") != "tenant":
            raise ControlError(
                f"ANYCASTLB_TOKEN is a {body.get('kind')} credential; the controller needs a tenant API "
                "token (`anycastlb tenants token create NAME`)"
            )
        self.tenant = str(body["name"])
        return self.tenant

    async def ensure(self, spec: LoadBalancerSpec) -> EnsuredLoadBalancer:
        tenant = self.tenant or await self.whoami()
        response = await self._call(
            "PUT", f"/v1/tenants/{tenant}/loadbalancers/{spec.name}", json=spec.model_dump(mode="json")
        )
        body = response.json()
        return EnsuredLoadBalancer(
            name=spec.name,
            version=int(body["version"]),
            addresses=tuple(body["addresses"]),
            created=response.status_code == 201,
        )

    async def held(self) -> dict[str, HeldLoadBalancer]:
        """Every load balancer of our tenant by name, without specs: one small request."""
        tenant = self.tenant or await self.whoami()
        body = (await self._call("GET", f"/v1/tenants/{tenant}/loadbalancer-versions")).json()
        return {
            str(item["name"]): HeldLoadBalancer(
                version=int(item["version"]),
                spec_digest=item.get("spec_digest"),
                addresses=tuple(item.get("addresses", ())),
            )
            for item in body
        }

    async def delete(self, name: str) -> bool:
        """Delete it (dynamic IPs are freed, reserved ones stay); False if it did not exist."""
        tenant = self.tenant or await self.whoami()
        try:
            await self._call("DELETE", f"/v1/tenants/{tenant}/loadbalancers/{name}")
        except ControlError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def ensure_cluster(self, cluster: str) -> None:
        """Create our cluster with tunnels on (idempotent: every leader start PUTs it)."""
        tenant = self.tenant or await self.whoami()
        await self._call("PUT", f"/v1/tenants/{tenant}/clusters/{cluster}", json={"tunnels": True})

    async def put_nodes(self, cluster: str, nodes: list[str]) -> TunnelNodes:
        """Register the cluster's complete node set; the answer names each node's tunnel address."""
        tenant = self.tenant or await self.whoami()
        body = (
            await self._call("PUT", f"/v1/tenants/{tenant}/clusters/{cluster}/nodes", json={"nodes": nodes})
        ).json()
        return TunnelNodes(
            version=int(body["version"]),
            backend_addresses={
                str(node["name"]): tuple(str(a) for a in node["backend_addresses"]) for node in body["nodes"]
            },
            rotation_ends=tuple(
                datetime.fromisoformat(node["previous_until"])
                for node in body["nodes"]
                if node.get("previous_until")
            ),
        )

    async def node_configs(self, cluster: str) -> dict[str, Any]:
        """Every node's tunnel config (``GET …/clusters/{c}/tunnel``): holds the nodes' private keys."""
        tenant = self.tenant or await self.whoami()
        return dict((await self._call("GET", f"/v1/tenants/{tenant}/clusters/{cluster}/tunnel")).json())
