"""``/v1/tenants/{tenant}/clusters/…``: a tenant's clusters, their node sets and tunnel keys, and
``/v1/pops/{pop}/tunnel-endpoint`` (the admin's).

Who sees what: the tenant (and the admin) reads its nodes' configs, each with the node's own
private key, which the node needs; no answer carries a PoP's private key, which only that PoP's
desired state does. Another tenant gets 404 for all of it.
"""

from datetime import timedelta

from fastapi import APIRouter, Response, status

from anycastlb.control.api.deps import Caller, Rt
from anycastlb.control.audit import Change
from anycastlb.control.cluster_schemas import (
    ClusterNodes,
    ClusterNodesOut,
    ClusterOut,
    ClusterPut,
    ClusterTunnelOut,
    PopTunnelEndpoint,
    check_cluster_name,
)
from anycastlb.control.errors import Invalid
from anycastlb.control.schemas import PopOut
from anycastlb.control.service import clusters, pops
from anycastlb.control.store.tables import utcnow

router = APIRouter(tags=["clusters"])
_PREFIX = "/v1/tenants/{tenant}/clusters"


def _name(cluster: str) -> str:
    try:
        return check_cluster_name(cluster)
    except ValueError as error:
        raise Invalid(f"path parameter cluster: {error}") from None


@router.get(_PREFIX)
def list_clusters(tenant: str, caller: Caller, rt: Rt) -> list[ClusterOut]:
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: clusters.list_clusters(s, tenant))


@router.put(
    _PREFIX + "/{cluster}",
    response_model=ClusterOut,
    responses={201: {"model": ClusterOut, "description": "Created"}},
)
def ensure_cluster(tenant: str, cluster: str, body: ClusterPut, caller: Caller, rt: Rt) -> Response:
    """Create the cluster (its tunnel network, UDP port, a key per PoP) or set ``tunnels``.
    Idempotent: the controller PUTs it at every start."""
    caller.require_tenant_access(tenant)
    name = _name(cluster)
    out, created = rt.write(
        lambda s: clusters.ensure_cluster(s, tenant, name, body.tunnels, rt.tunnels),
        change=Change(caller, "update", "cluster", name, tenant),
    )
    return Response(
        out.model_dump_json(),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )


@router.get(_PREFIX + "/{cluster}")
def get_cluster(tenant: str, cluster: str, caller: Caller, rt: Rt) -> ClusterOut:
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: clusters.get_cluster(s, tenant, cluster))


@router.delete(_PREFIX + "/{cluster}", status_code=status.HTTP_204_NO_CONTENT)
def delete_cluster(tenant: str, cluster: str, caller: Caller, rt: Rt) -> None:
    """Remove the cluster, its keys and its interfaces from every PoP."""
    caller.require_tenant_access(tenant)
    rt.write(
        lambda s: clusters.delete_cluster(s, tenant, cluster),
        change=Change(caller, "delete", "cluster", cluster, tenant),
    )


@router.put(_PREFIX + "/{cluster}/nodes")
def put_nodes(tenant: str, cluster: str, body: ClusterNodes, caller: Caller, rt: Rt) -> ClusterNodesOut:
    """The cluster's complete node set. New nodes get a key and a tunnel address, absent ones
    leave every PoP. The answer gives each node's tunnel address: its backend address."""
    caller.require_tenant_access(tenant)
    return rt.write(
        lambda s: clusters.put_nodes(s, tenant, cluster, body.nodes),
        change=Change(caller, "update", "cluster_nodes", cluster, tenant),
    )


@router.get(_PREFIX + "/{cluster}/nodes")
def get_nodes(tenant: str, cluster: str, caller: Caller, rt: Rt) -> ClusterNodesOut:
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: clusters.put_nodes_view(s, tenant, cluster))


@router.get(_PREFIX + "/{cluster}/tunnel")
def node_configs(tenant: str, cluster: str, caller: Caller, rt: Rt) -> ClusterTunnelOut:
    """Every node's tunnel config (its private key included; PoPs' public keys only)."""
    caller.require_tenant_access(tenant)
    return rt.read(lambda s: clusters.node_configs(s, tenant, cluster))


@router.post(_PREFIX + "/{cluster}/rotate")
def rotate(tenant: str, cluster: str, caller: Caller, rt: Rt) -> ClusterNodesOut:
    """New keys and new tunnel addresses for every node, make before break: the old ones stay
    peers of every PoP for the grace period (docs/control-plane.md, "Rotation")."""
    caller.require_tenant_access(tenant)
    grace = timedelta(seconds=rt.tunnels.grace)
    return rt.write(
        lambda s: clusters.rotate_cluster(s, tenant, cluster, utcnow(), grace),
        change=Change(caller, "rotate", "cluster_keys", cluster, tenant),
    )


@router.put("/v1/pops/{pop}/tunnel-endpoint", tags=["pops"])
def set_tunnel_endpoint(pop: str, body: PopTunnelEndpoint, caller: Caller, rt: Rt) -> PopOut:
    """The PoP's public address that nodes dial (null: none; nodes then get no peer for it)."""
    caller.require_admin()
    rt.write(
        lambda s: clusters.set_tunnel_endpoint(s, pop, body.tunnel_endpoint),
        change=Change(caller, "update", "pop_tunnel_endpoint", pop),
    )
    return rt.read(lambda s: pops.get_pop(s, pop))
