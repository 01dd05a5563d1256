"""Which clusters' tunnels a PoP needs: those its load balancers' backends are inside.

A load balancer names no cluster (its spec is the contract, and a CLI user writes it by hand), but
its backends say it: a backend inside a cluster's tunnel network is reached through that tunnel.
So each rendered load balancer keeps the /24 blocks of its IPv4 backends (a handful of integers,
however many nodes), and a PoP gets a cluster's interface when a load balancer of the cluster's
tenant that it serves has a block inside the cluster's network (tunnel networks are /24 or wider,
addressing.py, so a block is in one cluster's network or in none).
"""

from collections.abc import Iterable

from anycastlb.model.config import ListenerSettings

__all__ = ["backend_blocks"]


def backend_blocks(listeners: Iterable[ListenerSettings]) -> frozenset[int]:
    """The /24 blocks (address >> 8) of every IPv4 backend."""
    return frozenset(
        int(backend.address) >> 8
        for listener in listeners
        for backend in listener.backends
        if backend.address.version == 4
    )
