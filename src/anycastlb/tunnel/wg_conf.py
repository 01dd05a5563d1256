"""The ``wg setconf`` / ``wg syncconf`` text of a :class:`TunnelInterface` (pure).

Only what ``wg`` itself understands goes here: keys, listen port and peers. Addresses and MTU are
not WireGuard settings (``wg-quick`` handles them with ``ip``; so does :mod:`interface`).

The text holds the private key: it is handed to ``wg`` on its stdin and never logged or written to
disk (a file, even briefly, would be one more place a key can leak from).
"""

from anycastlb.model.tunnel import TunnelInterface, TunnelPeer

__all__ = ["render_conf"]


def _peer(peer: TunnelPeer) -> list[str]:
    lines = [
        "",
        "[Peer]",
        f"PublicKey = {peer.public_key}",
        f"AllowedIPs = {', '.join(str(network) for network in peer.allowed_ips)}",
    ]
    if peer.endpoint is not None:
        lines.append(f"Endpoint = {peer.endpoint}")
    if peer.persistent_keepalive:
        lines.append(f"PersistentKeepalive = {peer.persistent_keepalive}")
    return lines


def render_conf(interface: TunnelInterface) -> str:
    """The config file ``wg setconf NAME /dev/stdin`` reads, peers in the order given."""
    lines = ["[Interface]", f"PrivateKey = {interface.private_key}"]
    if interface.listen_port is not None:
        lines.append(f"ListenPort = {interface.listen_port}")
    for peer in interface.peers:
        lines.extend(_peer(peer))
    return "\n".join(lines) + "\n"
