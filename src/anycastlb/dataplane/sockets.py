"""Listening sockets for VIPs: ``SO_REUSEPORT`` so every worker accepts on its own queue,
``IP_FREEBIND`` so a VIP can be bound before it is routed here (the BGP announcement follows the
listener, never the other way round)."""

import socket

from anycastlb.model.config import Listener

__all__ = ["ListenError", "open_listener"]

_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
_IPV6_FREEBIND = 78  # linux/in6.h; not exported by the socket module


class ListenError(OSError):
    """A listener's socket could not be opened; the message names the listener and the cause."""


def open_listener(listener: Listener) -> socket.socket:
    """Open a non-blocking listening socket for one listener, shared by workers via SO_REUSEPORT."""
    family = socket.AF_INET6 if listener.address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_FREEBIND, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        sock.bind((str(listener.address), listener.port))
        sock.listen(listener.backlog)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise ListenError(
            error.errno,
            f"listener {listener.name}: cannot listen on {listener.address} port {listener.port}: "
            f"{error.strerror} (is another process bound there without SO_REUSEPORT?)",
        ) from None
    return sock
