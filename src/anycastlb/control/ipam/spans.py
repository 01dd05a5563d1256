"""Finding the lowest free address without enumerating a network.

Theory of operation
-------------------
An IPv6 /48 has 2**80 addresses, so nothing here walks a network address by address. Each network
of a pool becomes a :class:`Span`: its first and last address as integers, and the addresses never
handed out (reserved ranges and skipped network/broadcast addresses) merged into sorted, disjoint
intervals. Held addresses are a sorted list of integers. The search starts at a candidate and
alternates two jumps until neither applies:

- a candidate inside a blocked interval jumps past its end (one bisect);
- a held candidate jumps past the whole run of consecutive held addresses that starts there: in a
  sorted list of distinct integers ``held[k] - k`` never decreases, and is constant exactly along
  such a run, so the run's end is found by binary search.

Held runs can only be separated by blocked intervals, so the loop turns at most about twice per
blocked interval in the span, and a search costs O((blocked + 1) * log(held)) whatever the size of
the network or the number of holdings.
"""

import ipaddress
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from anycastlb.control.ipam.pools import Address, PoolView, skipped

__all__ = ["Span", "address_of", "lowest_free", "pool_capacity", "spans_of"]


@dataclass(frozen=True, slots=True)
class Span:
    """One network as integers, with its never-handed-out addresses as merged inclusive intervals."""

    first: int
    last: int
    blocked_firsts: tuple[int, ...]
    blocked_lasts: tuple[int, ...]

    @property
    def capacity(self) -> int:
        """Addresses that may be handed out (held or not)."""
        blocked = sum(
            last - first + 1 for first, last in zip(self.blocked_firsts, self.blocked_lasts, strict=True)
        )
        return self.last - self.first + 1 - blocked


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def spans_of(pool: PoolView, version: int) -> tuple[Span, ...]:
    """The pool's networks of one IP version, lowest first."""
    spans = []
    for network in sorted(
        (network for network in pool.networks if network.version == version),
        key=lambda network: int(network.network_address),
    ):
        low, high = int(network.network_address), int(network.broadcast_address)
        intervals = [(int(address), int(address)) for address in skipped(network)]
        for first, last in pool.reserved:
            if first.version == version and last.version == version:
                clipped = (max(low, int(first)), min(high, int(last)))
                if clipped[0] <= clipped[1]:
                    intervals.append(clipped)
        merged = _merge(intervals)
        spans.append(Span(low, high, tuple(first for first, _ in merged), tuple(last for _, last in merged)))
    return tuple(spans)


def _end_of_run(held: Sequence[int], start: int) -> int:
    """The last address of the run of consecutive held addresses that starts at ``held[start]``."""
    offset = held[start] - start
    low, high = start, len(held) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if held[middle] - middle == offset:
            low = middle
        else:
            high = middle - 1
    return held[low]


def lowest_free(span: Span, held: Sequence[int], start: int) -> int | None:
    """The lowest address of ``span`` at or after ``start`` that is neither blocked nor in ``held``
    (sorted, distinct), or None."""
    candidate = max(start, span.first)
    while candidate <= span.last:
        i = bisect_right(span.blocked_firsts, candidate) - 1
        if i >= 0 and span.blocked_lasts[i] >= candidate:
            candidate = span.blocked_lasts[i] + 1
            continue
        j = bisect_left(held, candidate)
        if j < len(held) and held[j] == candidate:
            candidate = _end_of_run(held, j) + 1
            continue
        return candidate
    return None


def address_of(value: int, version: int) -> Address:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def pool_capacity(pool: PoolView) -> dict[str, int]:
    """Addresses the pool can hand out, per family present in it (reserved and skipped ones
    excluded, held ones included): the denominator of a pool's usage in status output."""
    present = {network.version for network in pool.networks}
    return {
        family: sum(span.capacity for span in spans_of(pool, version))
        for family, version in (("ipv4", 4), ("ipv6", 6))
        if version in present
    }
