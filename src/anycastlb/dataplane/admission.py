"""The decision at accept: may this new connection go on, or is it refused before any backend?

Four limits, all kept in memory shared by the workers (``limits.py`` for open connections,
``rate_limits.py`` for new connections per second), checked per source first and per listener
last. The order matters under a flood: a connection refused for its source never counts against
the listener, so one flooding source cannot use up the listener's rate and lock out everyone else.
Only admitted connections are counted (a refused attempt takes no token and holds no slot).

What a "source" is depends on ``source_prefix_v4`` / ``source_prefix_v6``: one address by default,
or a whole /24 or /64, since one attacker rarely has only one address. The same source is used for
the open-connection limit and the rate limit. Its key is packed bytes (family, prefix length,
masked address; ``_shared_limits.pyx`` has the formats, and what an IPv4-mapped peer is).

The check is compiled (``_shared_limits.pyx``, through ``native.py``): the compiled loop of issue 12
calls ``admit_peer`` on accept4's sockaddr without the interpreter (``_shared_limits.pxd``), and
:meth:`Admission.admit` is the same C on the text address for the Python worker. A refusal's reason
is one of :data:`REFUSAL_REASONS` (metric label values). The Python version is the test oracle in
``tests/support/limits_oracle.py``.
"""

from anycastlb.dataplane.native import REFUSAL_REASONS, Admission, source_key

__all__ = ["REFUSAL_REASONS", "Admission", "source_key"]
