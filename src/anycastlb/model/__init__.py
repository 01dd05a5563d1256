"""Desired-state schema shared by all tiers: validated once at the edge, frozen inside.

Raw YAML and the control plane's API bodies are validated here with pydantic; every other part
receives the frozen models and never re-checks them.
"""

from anycastlb.model.bgp import BgpConfig, BgpPeer, VipAttributes
from anycastlb.model.config import (
    Backend,
    ConfigError,
    EdgeConfig,
    HealthCheck,
    Listener,
    ListenerSettings,
    MetricsEndpoint,
    load_config,
    parse_config,
)

__all__ = [
    "Backend",
    "BgpConfig",
    "BgpPeer",
    "ConfigError",
    "EdgeConfig",
    "HealthCheck",
    "Listener",
    "ListenerSettings",
    "MetricsEndpoint",
    "VipAttributes",
    "load_config",
    "parse_config",
]
