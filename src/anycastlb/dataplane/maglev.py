"""Maglev consistent hashing with weights: which node a client goes to, and where it retries.

Theory of operation
-------------------
Why Maglev (Eisenbud et al., NSDI 2016, section 3.4). Every PoP and every worker process must send
the same client to the same node while the node set is the same, a change of the set must move as few
clients as possible, and the per-connection choice must be one table read. Maglev gives all three: a
lookup table of prime size ``M`` is filled once per backend set, and ``lookup`` is ``table[h(key) % M]``.
A ring (Karger) needs many virtual nodes per backend for comparable balance and a binary search per
lookup; rendezvous hashing costs O(N) hashes per lookup.

Population (section 3.4, "Pseudocode 1"). Each backend ``i`` has a preference list over all slots,
``permutation[i][j] = (offset_i + j * skip_i) mod M`` with ``offset_i in [0, M)`` and ``skip_i in
[1, M)``; because ``M`` is prime every ``skip`` is coprime to it, so the list visits every slot exactly
once. Backends take turns; on its turn a backend walks its own list to the first slot still empty, claims
it, and the next turn resumes from there. Filling stops when all ``M`` slots are taken. A backend's slots
depend only on its own list and on who claimed what before it, so removing one backend mostly hands its
slots to the others and leaves the rest in place (measured: < 0.3 % of the other keys move for
M = 65537 and N = 3..10). We enforce the paper's ``M >= 100 * N``: shares are exact up to one slot per
backend, and one slot is then at most 1 % of an equal share.

Weights. The paper weights backends by how often each one gets a turn, and leaves the schedule open. Ours is
integer credit: each round, every backend adds its weight to its credit and takes a turn iff its credit
reached ``max_weight`` (then pays ``max_weight`` back). As ``weight <= max_weight``, a backend takes at most
one turn per round and, after ``R`` rounds, ``floor(R * weight / max_weight)`` turns. Each turn claims
exactly one slot, so the shares of the table are proportional to the weights up to one slot each, and only
ratios matter (``[2, 4]`` builds the same table as ``[1, 2]``). Turns within a round go in name order, so
neither the table nor any key's backend *name* depends on the order the caller lists backends in; indices
returned by ``lookup``/``candidates`` point into the caller's sequence (``table.backends``).

Hashes. Python's ``hash()`` of bytes and str is salted per process, which would give every worker a
different table, so it is never used. Backend permutations come from BLAKE2b (16-byte digest, split into
offset and skip halves, personalised so they are unrelated to other uses of the same names): strong and
portable, and it runs only N times per build. The key hash runs per connection, so it is ``zlib.crc32`` (C
speed) followed by a multiplicative (Fibonacci) finalizer: CRC32 is linear over GF(2), and taken directly
``mod M`` it clumps structured sets such as a /16 of sequential addresses onto ~9 % fewer distinct slots
than random keys; multiplying by the 64-bit golden-ratio constant and keeping the high bits restores
random-like spread for ~0.1 us more (a lookup is ~0.25 us; BLAKE2b alone is ~1 us). The key hash is not
keyed: the mapping is public and identical on every PoP by design; it is not a defence against clients
choosing their node.

``client_key`` uses only the client address (not the port), so one client sticks to one node, and folds
IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``, what a dual-stack socket reports) onto the IPv4 key.
"""

from __future__ import annotations

import hashlib
import socket
import zlib
from array import array
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

__all__ = ["DEFAULT_TABLE_SIZE", "MIN_SLOTS_PER_BACKEND", "MaglevBackend", "MaglevTable", "client_key"]

DEFAULT_TABLE_SIZE = 65537
"""Prime; with ``MIN_SLOTS_PER_BACKEND`` it allows up to 655 backends."""

MIN_SLOTS_PER_BACKEND = 100
"""The paper's ``M >= 100 * N``: keeps every backend's share within ~1 % of its ideal."""

_GOLDEN64 = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd: the multiplicative-hashing constant
_PERSON = b"anycastlb-maglev"  # BLAKE2b personalisation (at most 16 bytes)
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


@dataclass(frozen=True, slots=True)
class MaglevBackend:
    """A node as Maglev sees it: a stable ``name`` (e.g. ``"10.0.0.11:30443"``) and a weight >= 1."""

    name: str
    weight: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Maglev backend name must not be empty")
        if self.weight < 1:
            raise ValueError(
                f"Maglev backend {self.name!r} has weight {self.weight}; weights must be >= 1 "
                "(leave weight-0 backends out of the table instead)"
            )


def client_key(address: str) -> bytes:
    """The hash key of a client: its packed IP address (4 bytes for IPv4 and IPv4-mapped IPv6, else 16).

    A zone suffix (``fe80::1%eth0``) is ignored. Raises ``ValueError`` if ``address`` is not an IP address.
    """
    host = address.partition("%")[0]
    try:
        if ":" not in host:
            return socket.inet_pton(socket.AF_INET, host)
        packed = socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        raise ValueError(f"not an IP address: {address!r}") from None
    return packed[12:] if packed.startswith(_V4_MAPPED_PREFIX) else packed


def _is_prime(n: int) -> bool:
    if n < 3 or n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def _offset_and_skip(name: str, size: int) -> tuple[int, int]:
    """The backend's preference list, ``(offset + j * skip) % size``, as its two parameters."""
    digest = hashlib.blake2b(name.encode(), digest_size=16, person=_PERSON).digest()
    offset = int.from_bytes(digest[:8], "little") % size
    skip = int.from_bytes(digest[8:], "little") % (size - 1) + 1
    return offset, skip


def _populate(backends: Sequence[MaglevBackend], turn_order: Sequence[int], size: int) -> list[int]:
    """Fill ``size`` slots with backend indices: the paper's population loop with weighted turns."""
    params = [_offset_and_skip(backends[i].name, size) for i in turn_order]
    nxt = [offset for offset, _ in params]  # the next slot each backend will try
    skips = [skip for _, skip in params]
    weights = [backends[i].weight for i in turn_order]
    max_weight = max(weights)
    credit = [0] * len(turn_order)
    entries = [-1] * size
    filled = 0
    while True:
        for t, backend in enumerate(turn_order):
            credit[t] += weights[t]
            if credit[t] < max_weight:
                continue
            credit[t] -= max_weight
            slot, skip = nxt[t], skips[t]
            while entries[slot] >= 0:  # walk the preference list to the first empty slot
                slot += skip
                if slot >= size:
                    slot -= size
            entries[slot] = backend
            slot += skip
            nxt[t] = slot - size if slot >= size else slot
            filled += 1
            if filled == size:
                return entries


class MaglevTable:
    """An immutable Maglev lookup table for one backend set; build a new one when the set changes.

    Indices returned by ``lookup`` and ``candidates`` point into ``backends``, which keeps the caller's
    order. An empty backend set gives an empty table (``is_empty``): ``lookup`` raises ``LookupError``
    and ``candidates`` returns ``[]``.
    """

    __slots__ = ("_entries", "_name_order", "_owner_set", "_owners", "backends", "size")

    def __init__(self, backends: Sequence[MaglevBackend], size: int = DEFAULT_TABLE_SIZE) -> None:
        if not _is_prime(size):
            raise ValueError(
                f"Maglev table size {size} is not prime; a prime size makes every backend's "
                f"preference list a full permutation (use e.g. {DEFAULT_TABLE_SIZE})"
            )
        self.backends: tuple[MaglevBackend, ...] = tuple(backends)
        self.size = size
        n = len(self.backends)
        if size < MIN_SLOTS_PER_BACKEND * n:
            raise ValueError(
                f"Maglev table size {size} is too small for {n} backends: use a prime >= "
                f"{MIN_SLOTS_PER_BACKEND * n} so that each backend's share stays within ~1 %"
            )
        names = [b.name for b in self.backends]
        if len(set(names)) != n:
            dupes = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"Maglev backend names must be unique; duplicated: {', '.join(dupes)}")
        self._name_order = sorted(range(n), key=names.__getitem__)
        typecode = "H" if n <= 0xFFFF else "I"
        filled = _populate(self.backends, self._name_order, size) if n else []
        self._entries = array(typecode, filled)
        self._owner_set = frozenset(filled)  # backends owning at least one slot
        self._owners = len(self._owner_set)

    @property
    def is_empty(self) -> bool:
        """True when the table has no backends, so there is nowhere to send a client."""
        return not self.backends

    @property
    def entries(self) -> memoryview:
        """The table itself, read-only: ``size`` backend indices (empty when ``is_empty``)."""
        return memoryview(self._entries).toreadonly()

    def _slot(self, key: bytes) -> int:
        return (zlib.crc32(key) * _GOLDEN64 >> 32) % self.size

    def lookup(self, key: bytes) -> int:
        """The index of the backend for ``key``; raises ``LookupError`` if the table is empty."""
        try:
            return self._entries[self._slot(key)]
        except IndexError:
            raise LookupError("Maglev table has no backends") from None

    def candidates(self, key: bytes, limit: int, skip: AbstractSet[int] = frozenset()) -> list[int]:
        """Up to ``limit`` distinct backend indices for ``key``, best first; the first is ``lookup(key)``.

        The rest are the retry order when connecting to the ones before fails: the distinct backends met
        walking forward in the table (wrapping) from the key's slot. Why this walk:
        - it is O(limit) table reads and no extra hashing (rehashing with an attempt counter has the same
          properties and costs a hash per step; rendezvous order costs O(N) per connection);
        - neighbouring slots are claimed via unrelated permutations, so the keys of a failed backend
          spread over the others in proportion to their shares instead of piling onto one;
        - it is deterministic and identical in every process, like ``lookup``.
        Its limit: after a backend X is removed, X's slots are taken by others, which reorders the walk for
        some keys. Measured for N = 5..10, among the keys not on X, 83-89 % keep their old first retry
        and 72-80 % their old two retries (old candidates minus X); a rendezvous order would keep ~100 %
        but costs O(N) hashing on every connection, for an order that only matters while connects fail.

        ``skip`` (indices of unhealthy backends) is how health is applied without a rebuild: the walk
        passes over their slots, so only the clients of a sick backend move, each to the next healthy
        backend after its slot, and they come back when it recovers. A rebuild would also move ~1 % of
        everyone else and cost tens of milliseconds in the worker at the worst moment.

        Backends owning no slot at all (a weight too small for the table to give it one) are appended
        in name order, so the result always has ``min(limit, len(backends) - len(skip))`` entries.
        """
        if limit < 0:
            raise ValueError(f"candidates limit must be >= 0, got {limit}")
        if not self.backends or limit == 0:
            return []
        owners_left = len(self._owner_set - skip) if skip else self._owners
        found = self._walk(self._slot(key), min(limit, owners_left), skip)
        if len(found) < limit and self._owners < len(self.backends):
            found += [i for i in self._name_order if i not in found and i not in skip][: limit - len(found)]
        return found

    def _walk(self, slot: int, walk_to: int, skip: AbstractSet[int]) -> list[int]:
        """The candidate walk from ``slot``, passing over ``skip``; it ends because ``walk_to`` owners
        outside ``skip`` exist and every owner is met within one lap."""
        entries, size = self._entries, self.size
        found: list[int] = []
        while len(found) < walk_to:
            backend = entries[slot]
            if backend not in found and backend not in skip:
                found.append(backend)
            slot += 1
            if slot == size:
                slot = 0
        return found

    def __repr__(self) -> str:
        names = ", ".join(f"{b.name}*{b.weight}" for b in self.backends)
        return f"MaglevTable(size={self.size}, backends=[{names}])"
