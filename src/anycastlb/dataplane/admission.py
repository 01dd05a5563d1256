"""The decision at accept: may this new connection go on, or is it refused before any backend?

Four limits, all kept in memory shared by the workers (``limits.py`` for open connections,
``rate_limits.py`` for new connections per second), checked per source first and per listener
last. The order matters under a flood: a connection refused for its source never counts against
the listener, so one flooding source cannot use up the listener's rate and lock out everyone else.
Only admitted connections are counted (a refused attempt takes no token and holds no slot).

What a "source" is depends on ``source_prefix_v4`` / ``source_prefix_v6``: one address by default,
or a whole /24 or /64, since one attacker rarely has only one address. The same key is used for
the open-connection limit and the rate limit. At the defaults the key is the address text itself,
as before prefixes existed, so nothing moves for existing configs.
"""

import socket

from anycastlb.dataplane.limits import SharedCounters
from anycastlb.dataplane.rate_limits import RateLimit, RateWindows
from anycastlb.model.config import Listener

__all__ = ["Admission", "source_key"]


def source_key(address: str, prefix_v4: int, prefix_v6: int) -> str | bytes:
    """What identifies the source ``address`` for the per-source limits.

    A whole address stays its text (the cheapest key); a prefix becomes ``b"<length>/"`` plus the
    masked packed address, so ``/24`` and ``/32`` keys of one address never coincide."""
    if ":" in address:
        family, prefix, bits = socket.AF_INET6, prefix_v6, 128
        address = address.partition("%")[0]  # a link-local peer's scope is not part of the source
    else:
        family, prefix, bits = socket.AF_INET, prefix_v4, 32
    if prefix >= bits:
        return address
    packed = int.from_bytes(socket.inet_pton(family, address), "big") >> (bits - prefix) << (bits - prefix)
    return b"%d/" % prefix + packed.to_bytes(bits // 8, "big")


class Admission:
    """One listener's limits as a worker checks them at accept (rebuilt when its config changes)."""

    __slots__ = (
        "counters",
        "listener_bucket",
        "listener_rate",
        "listener_rate_bucket",
        "max_connections",
        "max_per_source",
        "prefix_v4",
        "prefix_v6",
        "rate_key",
        "rates",
        "source_rate",
    )

    def __init__(self, config: Listener, counters: SharedCounters, rates: RateWindows) -> None:
        self.counters = counters
        self.rates = rates
        name = config.name.encode()
        self.listener_bucket = SharedCounters.bucket(b"listener\0" + name)
        self.max_connections = config.max_connections
        self.max_per_source = config.max_connections_per_source
        self.prefix_v4 = config.source_prefix_v4
        self.prefix_v6 = config.source_prefix_v6
        self.listener_rate = RateLimit.of(config.new_connections_per_second, config.new_connections_burst)
        self.listener_rate_bucket = RateWindows.bucket(b"listener-rate\0" + name)
        self.source_rate = RateLimit.of(
            config.new_connections_per_second_per_source, config.new_connections_burst_per_source
        )
        self.rate_key = b"source-rate\0" + name  # a source's rate is counted per listener

    def updated(self, config: Listener) -> "Admission":
        """The limits of a reloaded config for the same socket. Open connections were counted under
        this listener's bucket and give their slots back there, even if the listener was renamed."""
        admission = Admission(config, self.counters, self.rates)
        admission.listener_bucket = self.listener_bucket
        return admission

    def admit(self, address: str, now: float) -> tuple[str, int]:
        """``("", source bucket)`` when admitted (and counted), else ``(reason, 0)``.

        The source bucket must be handed back to :meth:`release` when the connection closes."""
        key = source_key(address, self.prefix_v4, self.prefix_v6)
        counters, rates = self.counters, self.rates
        source_bucket = counters.bucket(key)
        source_rate = self.source_rate
        rate_bucket = 0
        if source_rate is not None:
            rate_bucket = rates.bucket((self.rate_key, key))
            if not rates.admits(rate_bucket, source_rate, now):
                return "source_rate", 0
        if counters.total(source_bucket) >= self.max_per_source:
            return "source_limit", 0
        listener_rate = self.listener_rate
        if listener_rate is not None and not rates.admits(self.listener_rate_bucket, listener_rate, now):
            return "listener_rate", 0
        if counters.total(self.listener_bucket) >= self.max_connections:
            return "listener_limit", 0
        if source_rate is not None:
            rates.record(rate_bucket, source_rate, now)
        if listener_rate is not None:
            rates.record(self.listener_rate_bucket, listener_rate, now)
        counters.add(self.listener_bucket, 1)
        counters.add(source_bucket, 1)
        return "", source_bucket

    def release(self, source_bucket: int) -> None:
        """A connection admitted here closed: give its open-connection slots back."""
        self.counters.add(self.listener_bucket, -1)
        self.counters.add(source_bucket, -1)
