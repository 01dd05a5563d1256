"""New-connection rate limits shared by all worker processes, without locks.

Theory of operation. A rate limit is given as a token bucket: ``rate`` connections per second and a
``burst``. A true token bucket keeps one level that every admission reads, refills and decrements:
a read-modify-write of one shared word, which needs an atomic compare-and-swap across processes,
and Python has none on an ``mmap``. So each key (a listener, or a listener and a source prefix) is
kept as a **sliding window** of length ``W = burst / rate`` in **per-worker rows**, the same shape as
the concurrent-connection counters in ``limits.py``: a worker writes only its own row (no lost
updates), and a decision reads the sum over all rows.

Per worker and bucket there are two slots, for the current fixed window and the previous one
(chosen by the window number's parity), each ``(window number mod 2^32, connections admitted)``.
With ``f`` the fraction of the current window already elapsed, the estimate of connections in
the last ``W`` seconds is ``current + previous * (1 - f)``; a connection is admitted while the
estimate is below ``burst``, and only admitted connections are recorded (a refused attempt takes
no token, as with a bucket, so a flooding source still gets its ``rate`` through).

Error bound, against an exact token bucket of the same rate and burst:

- *long run*: a fixed window never counts more than ``burst`` admissions (the estimate includes
  the whole current window), so the average rate is at most ``rate``, like the bucket;
- *short run*: any interval of length ``W`` spans two fixed windows, so it admits at most
  ``2 * burst``, which is exactly what a token bucket allows over ``W`` (``burst + rate * W``);
- *across workers*: reading the sum and recording are two steps, so workers deciding in the same
  instant may each admit the last token: at most ``workers - 1`` connections over the limit per
  window (each worker has at most one decision in flight);
- *buckets*: keys are hashed into :data:`RATE_BUCKETS` buckets (see ``limits.py`` for why hashed,
  fixed-size, and the key); two keys sharing a bucket share a limit.

A torn read costs nothing unsafe: a worker moving a slot to a new window writes the window number
first and then the count, so a reader in between sees the old count under the new number, an
overestimate that can only refuse. The clock is ``CLOCK_MONOTONIC`` (``time.monotonic``), one for
the whole machine, so every worker numbers windows alike.

Memory layout (for the compiled core of issue 12, which must read and update the same table):
one anonymous ``MAP_SHARED`` block of native-endian ``uint32``; the slot of ``(worker, bucket,
slot)`` starts at index ``((worker * RATE_BUCKETS + bucket) * 2 + slot) * 2`` and holds
``[window number mod 2^32, count]``; ``slot = window number & 1``, ``window number =
floor(CLOCK_MONOTONIC seconds / W)``.

The windows are implemented in Cython (``_shared_limits.pyx``, through ``native.py``); the Python
version is the test oracle in ``tests/support/limits_oracle.py``.
"""

from dataclasses import dataclass

from anycastlb.dataplane.native import RATE_BUCKETS, RateWindows, listener_rate_key

__all__ = ["RATE_BUCKETS", "RateLimit", "RateWindows", "listener_rate_key"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket's parameters, as the sliding window uses them."""

    burst: int
    window: float  # seconds: burst / rate

    @classmethod
    def of(cls, rate: float | None, burst: int | None) -> "RateLimit | None":
        """``None`` when there is no rate; the burst defaults to one second's worth (at least 1)."""
        if rate is None:
            return None
        burst = burst if burst is not None else max(1, round(rate))
        return cls(burst, burst / rate)
