"""Connection limits shared by all worker processes (per listener and per source address).

Workers accept from their own ``SO_REUSEPORT`` sockets, so a limit kept in one process would let
a client open ``limit * workers`` connections. Instead the supervisor maps one anonymous shared
memory block before forking: a row of counters per worker, a column per hash bucket. A worker
only ever writes its own row (no locks, no lost updates) and reads the column's sum to decide.

Keys (packed bytes: ``listener_key`` for a listener, ``source_key`` for a source) are hashed into
``BUCKETS`` buckets with SipHash-2-4 under a 16-byte key the supervisor draws once per agent
(``os.urandom``) and hands to the table before forking: every worker, a respawned one too, agrees on
buckets, while an outsider cannot pick source addresses that collide on purpose. Two keys that share a
bucket share a limit; with 2^18 buckets and 10,000 active sources the chance that a given source
shares one is ~4%, and it only matters when both are near the limit together. That is the price
of a lock-free, fixed-size table that a flood of spoofed sources cannot grow.

Memory layout (for the compiled core of issue 12): one anonymous ``MAP_SHARED`` block of native-endian
``uint32``; the counter of ``(worker, bucket)`` is the word at index ``worker * BUCKETS + bucket``.

The table is implemented in Cython (``_shared_limits.pyx``, imported through ``native.py``, which
refuses a stale build); its Python version is the test oracle in ``tests/support/limits_oracle.py``.
"""

from anycastlb.dataplane.native import BUCKETS, KEY_BYTES, SharedCounters, listener_key

__all__ = ["BUCKETS", "KEY_BYTES", "SharedCounters", "listener_key"]
