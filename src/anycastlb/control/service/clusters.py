"""Clusters and their tunnels in the store: create, register nodes, rotate, and what each PoP and
each node receives (the pure rules are in control/tunnels/).

Every change takes the writers' lock, bumps the revision (the cluster's new version) and marks
every PoP: a node added or a key rotated changes the peers of each PoP serving the cluster, and
a PoP that does not serve it re-reads an unchanged state (cheap: rendered once per version).
"""

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from anycastlb.control.cluster_schemas import (
    ClusterNodeOut,
    ClusterNodesOut,
    ClusterOut,
    ClusterTunnelOut,
)
from anycastlb.control.errors import Conflict, Invalid, NotFound
from anycastlb.control.service.revision import bump, lock, touch_pops
from anycastlb.control.service.tenants import tenant_by_name
from anycastlb.control.store.tables import Cluster, ClusterNode, ClusterPopKey, Pop, Tenant
from anycastlb.control.tunnels.addressing import (
    TunnelAllocationError,
    TunnelSettings,
    allocate_host,
    allocate_network,
    allocate_port,
    interface_name,
)
from anycastlb.control.tunnels.configs import ClusterTunnel, PopSide, node_config, pop_interface
from anycastlb.control.tunnels.keys import new_keypair
from anycastlb.control.tunnels.rotation import NodeKey, NodeKeyState, RotationInProgressError, expire, rotate
from anycastlb.model.tunnel import TunnelInterface

__all__ = [
    "delete_cluster",
    "ensure_cluster",
    "ensure_pop_keys",
    "finish_rotations",
    "forget_pop",
    "get_cluster",
    "list_clusters",
    "node_configs",
    "pop_tunnels",
    "put_nodes",
    "put_nodes_view",
    "rotate_cluster",
    "rotations_due",
    "set_tunnel_endpoint",
    "tunnel_networks",
]


def _cluster(session: Session, tenant: str, name: str) -> Cluster:
    owner = tenant_by_name(session, tenant)
    found = session.execute(
        select(Cluster).where(Cluster.tenant_id == owner.id, Cluster.name == name)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"cluster {name!r} of tenant {tenant!r} not found")
    return found


def _nodes(session: Session, cluster: Cluster) -> list[ClusterNode]:
    return list(
        session.execute(
            select(ClusterNode).where(ClusterNode.cluster_id == cluster.id).order_by(ClusterNode.name)
        ).scalars()
    )


def _state(node: ClusterNode) -> NodeKeyState:
    previous = (
        NodeKey("", node.previous_public_key, node.previous_address)
        if node.previous_public_key is not None and node.previous_address is not None
        else None
    )
    return NodeKeyState(
        NodeKey(node.private_key, node.public_key, node.address),
        previous,
        node.previous_until if previous is not None else None,
    )


def _store_state(node: ClusterNode, state: NodeKeyState) -> None:
    node.private_key, node.public_key, node.address = (
        state.current.private,
        state.current.public,
        state.current.address,
    )
    node.previous_public_key = state.previous.public if state.previous else None
    node.previous_address = state.previous.address if state.previous else None
    node.previous_until = state.previous_until


def _taken_addresses(session: Session, cluster: Cluster) -> set[str]:
    taken = {
        address
        for (address,) in session.execute(
            select(ClusterPopKey.address).where(ClusterPopKey.cluster_id == cluster.id)
        )
    }
    for node in _nodes(session, cluster):
        taken.add(node.address)
        if node.previous_address is not None:
            taken.add(node.previous_address)
    return taken


def _allocate(session: Session, cluster: Cluster, taken: set[str]) -> str:
    try:
        address = str(allocate_host(ipaddress.IPv4Network(cluster.network), taken))
    except TunnelAllocationError as error:
        raise Conflict(str(error)) from None
    taken.add(address)
    return address


def _changed(session: Session, cluster: Cluster) -> None:
    """A new version for the cluster, and every PoP re-reads its state (see the module's doc)."""
    version = bump(session)
    cluster.version = version
    touch_pops(session, (), version)


def _out(session: Session, cluster: Cluster) -> ClusterOut:
    nodes = _nodes(session, cluster)
    return ClusterOut(
        name=cluster.name,
        tunnels=cluster.tunnels,
        network=cluster.network,
        listen_port=cluster.listen_port,
        version=cluster.version,
        nodes=len(nodes),
        rotating=sum(1 for node in nodes if node.previous_public_key is not None),
        created_at=cluster.created_at,
    )


def _add_pop_key(session: Session, cluster: Cluster, pop: Pop, taken: set[str]) -> None:
    pair = new_keypair()
    session.add(
        ClusterPopKey(
            cluster_id=cluster.id,
            pop_id=pop.id,
            private_key=pair.private,
            public_key=pair.public,
            address=_allocate(session, cluster, taken),
        )
    )


def ensure_cluster(
    session: Session, tenant: str, name: str, tunnels: bool, settings: TunnelSettings
) -> tuple[ClusterOut, bool]:
    """Create the cluster (its network, port, a key per PoP) or set ``tunnels``; (answer, created)."""
    lock(session)
    owner = tenant_by_name(session, tenant)
    found = session.execute(
        select(Cluster).where(Cluster.tenant_id == owner.id, Cluster.name == name)
    ).scalar_one_or_none()
    if found is not None:
        if found.tunnels != tunnels:
            found.tunnels = tunnels
            _changed(session, found)
        return _out(session, found), False
    try:
        network = allocate_network(settings, session.execute(select(Cluster.network)).scalars())
        port = allocate_port(settings, session.execute(select(Cluster.listen_port)).scalars())
    except TunnelAllocationError as error:
        raise Conflict(str(error)) from None
    version = bump(session)
    cluster = Cluster(
        tenant_id=owner.id,
        name=name,
        tunnels=tunnels,
        network=str(network),
        listen_port=port,
        version=version,
    )
    session.add(cluster)
    session.flush()
    interface_name(cluster.id)  # refuse now, not when a PoP renders it
    taken: set[str] = set()
    for pop in session.execute(select(Pop).order_by(Pop.name)).scalars():
        _add_pop_key(session, cluster, pop, taken)
    touch_pops(session, (), version)
    return _out(session, cluster), True


def ensure_pop_keys(session: Session, pop: Pop) -> None:
    """A new PoP gets its key and address in every cluster (the caller bumped the revision)."""
    for cluster in session.execute(select(Cluster)).scalars():
        _add_pop_key(session, cluster, pop, _taken_addresses(session, cluster))
        cluster.version = pop.desired_version


def forget_pop(session: Session) -> None:
    """A PoP was deleted: every node config lost its peer, so every cluster gets a new version
    (a node's agent applies only a higher one)."""
    if session.execute(select(Cluster.id).limit(1)).first() is None:
        return
    version = bump(session)
    for cluster in session.execute(select(Cluster)).scalars():
        cluster.version = version


def get_cluster(session: Session, tenant: str, name: str) -> ClusterOut:
    return _out(session, _cluster(session, tenant, name))


def list_clusters(session: Session, tenant: str) -> list[ClusterOut]:
    owner = tenant_by_name(session, tenant)
    clusters = session.execute(
        select(Cluster).where(Cluster.tenant_id == owner.id).order_by(Cluster.name)
    ).scalars()
    return [_out(session, cluster) for cluster in clusters]


def delete_cluster(session: Session, tenant: str, name: str) -> None:
    lock(session)
    cluster = _cluster(session, tenant, name)
    session.delete(cluster)  # its nodes and PoP keys go with it (ON DELETE CASCADE)
    touch_pops(session, (), bump(session))


def _nodes_out(session: Session, cluster: Cluster) -> ClusterNodesOut:
    return ClusterNodesOut(
        cluster=cluster.name,
        version=cluster.version,
        nodes=tuple(
            ClusterNodeOut(
                name=node.name,
                address=node.address,
                backend_addresses=_state(node).backend_addresses,
                public_key=node.public_key,
                previous_until=node.previous_until if node.previous_public_key is not None else None,
            )
            for node in _nodes(session, cluster)
        ),
    )


def put_nodes_view(session: Session, tenant: str, name: str) -> ClusterNodesOut:
    """The node set as :func:`put_nodes` answers it, without changing anything."""
    return _nodes_out(session, _cluster(session, tenant, name))


def _require_tunnels(cluster: Cluster) -> None:
    if not cluster.tunnels:
        raise Conflict(
            f"cluster {cluster.name!r} has tunnels off; turn them on first "
            f"(PUT the cluster with tunnels: true)"
        )


def put_nodes(session: Session, tenant: str, name: str, names: Iterable[str]) -> ClusterNodesOut:
    """Make the cluster's node set exactly ``names``: new nodes get a key and an address, absent
    ones are removed (their peers leave every PoP). Idempotent: the same set keeps the version."""
    lock(session)
    cluster = _cluster(session, tenant, name)
    _require_tunnels(cluster)
    wanted = set(names)
    existing = {node.name: node for node in _nodes(session, cluster)}
    gone = [node for node_name, node in existing.items() if node_name not in wanted]
    new = sorted(wanted - existing.keys())
    if not gone and not new:
        return _nodes_out(session, cluster)
    for node in gone:
        session.delete(node)
    session.flush()
    taken = _taken_addresses(session, cluster)
    for node_name in new:
        pair = new_keypair()
        session.add(
            ClusterNode(
                cluster_id=cluster.id,
                name=node_name,
                private_key=pair.private,
                public_key=pair.public,
                address=_allocate(session, cluster, taken),
            )
        )
    _changed(session, cluster)
    session.flush()
    return _nodes_out(session, cluster)


def rotate_cluster(
    session: Session, tenant: str, name: str, now: datetime, grace: timedelta
) -> ClusterNodesOut:
    """Every node gets a new key and a new address; the old pair stays a peer until the grace
    period ends (control/tunnels/rotation.py says what this keeps working and what not)."""
    lock(session)
    cluster = _cluster(session, tenant, name)
    _require_tunnels(cluster)
    nodes = _nodes(session, cluster)
    if not nodes:
        raise Invalid(f"cluster {name!r} has no nodes to rotate")
    taken = _taken_addresses(session, cluster)
    for node in nodes:
        pair = new_keypair()
        try:
            state = rotate(
                _state(node),
                NodeKey(pair.private, pair.public, _allocate(session, cluster, taken)),
                now,
                grace,
            )
        except RotationInProgressError as error:
            raise Conflict(
                f"node {node.name!r} of cluster {name!r} is still rotating: {error}; rotate again after "
                "that (a second rotation now would cut nodes still on their previous key)"
            ) from None
        _store_state(node, state)
    _changed(session, cluster)
    return _nodes_out(session, cluster)


def rotations_due(session: Session, now: datetime) -> bool:
    return (
        session.execute(select(ClusterNode.id).where(ClusterNode.previous_until <= now).limit(1)).first()
        is not None
    )


def finish_rotations(session: Session, now: datetime) -> int:
    """Drop every previous key whose grace period has passed; the number of nodes done."""
    lock(session)
    done = 0
    clusters: dict[int, Cluster] = {}
    for node in session.execute(select(ClusterNode).where(ClusterNode.previous_until <= now)).scalars():
        _store_state(node, expire(_state(node), now))
        done += 1
        if node.cluster_id not in clusters:
            clusters[node.cluster_id] = session.get_one(Cluster, node.cluster_id)
    for cluster in clusters.values():
        _changed(session, cluster)
    return done


def _pop_sides(session: Session, cluster: Cluster) -> list[PopSide]:
    rows = session.execute(
        select(ClusterPopKey, Pop.name, Pop.tunnel_endpoint)
        .join(Pop, Pop.id == ClusterPopKey.pop_id)
        .where(ClusterPopKey.cluster_id == cluster.id)
    ).all()
    return [
        PopSide(pop, key.private_key, key.public_key, key.address, endpoint) for key, pop, endpoint in rows
    ]


def _tunnel(cluster: Cluster, tenant: str) -> ClusterTunnel:
    return ClusterTunnel(
        tenant=tenant,
        name=cluster.name,
        network=ipaddress.IPv4Network(cluster.network),
        listen_port=cluster.listen_port,
        interface=interface_name(cluster.id),
        version=cluster.version,
    )


def node_configs(session: Session, tenant: str, name: str) -> ClusterTunnelOut:
    """Every node's config: its own private key and the PoPs' public keys, never a PoP's private."""
    cluster = _cluster(session, tenant, name)
    _require_tunnels(cluster)
    tunnel = _tunnel(cluster, tenant)
    pops = _pop_sides(session, cluster)
    return ClusterTunnelOut(
        cluster=cluster.name,
        version=cluster.version,
        nodes=tuple(node_config(tunnel, node.name, _state(node), pops) for node in _nodes(session, cluster)),
    )


def set_tunnel_endpoint(session: Session, pop_name: str, endpoint: str | None) -> None:
    """Set the PoP's public tunnel address; every cluster's node configs change with it."""
    lock(session)
    pop = session.execute(select(Pop).where(Pop.name == pop_name)).scalar_one_or_none()
    if pop is None:
        raise NotFound(f"PoP {pop_name!r} not found")
    if pop.tunnel_endpoint == endpoint:
        return
    pop.tunnel_endpoint = endpoint
    version = bump(session)
    for cluster in session.execute(select(Cluster)).scalars():
        cluster.version = version
    touch_pops(session, (), version)


def tunnel_networks(session: Session) -> list[tuple[str, ipaddress.IPv4Network]]:
    """(tenant, network) of every cluster: a backend inside another tenant's is refused."""
    return [
        (tenant, ipaddress.IPv4Network(network))
        for network, tenant in session.execute(
            select(Cluster.network, Tenant.name).join(Tenant, Tenant.id == Cluster.tenant_id)
        )
    ]


def pop_tunnels(
    session: Session, pop: str, served: Callable[[frozenset[str]], Mapping[str, frozenset[int]]]
) -> tuple[TunnelInterface, ...]:
    """The PoP's interfaces (none without a tunnel endpoint: no node dials it): one per cluster
    with tunnels on, a key for this PoP, and a load balancer of its tenant that this PoP serves
    with a backend in the cluster's network. ``served(tenants)``: for those tenants, the /24
    blocks (address >> 8) of the IPv4 backends of the load balancers this PoP serves
    (tunnels/served.py); asked only when there is a candidate cluster, so a platform without
    tunnels pays one small query per render and nothing more (bench/render_cost.py)."""
    rows = session.execute(
        select(Cluster, Tenant.name, ClusterPopKey)
        .join(Tenant, Tenant.id == Cluster.tenant_id)
        .join(ClusterPopKey, ClusterPopKey.cluster_id == Cluster.id)
        .join(Pop, Pop.id == ClusterPopKey.pop_id)
        .where(Pop.name == pop, Pop.tunnel_endpoint.is_not(None), Cluster.tunnels.is_(True))
        .order_by(Cluster.id)
    ).all()
    if not rows:
        return ()
    blocks_of = served(frozenset(tenant for _, tenant, _ in rows))
    interfaces = []
    for cluster, tenant, key in rows:
        blocks = blocks_of.get(tenant)
        if not blocks:
            continue
        network = ipaddress.IPv4Network(cluster.network)
        first, last = int(network.network_address) >> 8, int(network.broadcast_address) >> 8
        if not any(first <= block <= last for block in blocks):
            continue
        side = PopSide(pop, key.private_key, key.public_key, key.address, None)
        states = [(node.name, _state(node)) for node in _nodes(session, cluster)]
        interfaces.append(pop_interface(_tunnel(cluster, tenant), side, states))
    return tuple(interfaces)
