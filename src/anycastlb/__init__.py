"""anycastlb: a provider-independent anycast L4 load balancer for Kubernetes ingress.

The package is organised by the parts of the system (see shared/DESIGN.md):
``model`` (desired-state schema), ``dataplane`` (the L4 proxy), ``edge`` (the PoP agent)
and ``cli`` (one ``anycastlb`` command).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
