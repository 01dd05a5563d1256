"""Which VIPs a PoP has, with which path attributes, and whether each can be served (pure).

A VIP is the address of a listener bound to a specific address (a wildcard listener has no VIP to
announce); several listeners (ports) may share one. A VIP can be served while at least one of its
listeners has a healthy backend, as the health view says.
"""

import ipaddress

from anycastlb.bgp.policy import Attributes, Prefix
from anycastlb.model.bgp import BgpConfig
from anycastlb.model.config import EdgeConfig
from anycastlb.wire.health_view import HealthView

__all__ = ["vip_attributes", "vip_listeners", "vip_serving"]


def vip_listeners(config: EdgeConfig) -> dict[Prefix, list[str]]:
    """Each VIP as a host prefix, with the names of the listeners on it."""
    vips: dict[Prefix, list[str]] = {}
    for listener in config.listeners:
        if listener.address.is_unspecified:
            continue
        vips.setdefault(ipaddress.ip_network(listener.address), []).append(listener.name)
    return vips


def vip_attributes(bgp: BgpConfig, prefixes: list[Prefix]) -> dict[Prefix, Attributes]:
    """PoP-wide attributes, overridden per VIP where ``bgp.vips`` says so."""
    overrides = {vip.prefix: vip for vip in bgp.vips}
    result: dict[Prefix, Attributes] = {}
    for prefix in prefixes:
        next_hop = bgp.next_hop if prefix.version == 4 else bgp.next_hop_v6
        override = overrides.get(str(prefix))
        med, communities, prepend = bgp.med, bgp.communities, bgp.as_path_prepend
        if override is not None:
            med = override.med if override.med is not None else med
            communities = override.communities if override.communities is not None else communities
            prepend = override.as_path_prepend if override.as_path_prepend is not None else prepend
        result[prefix] = Attributes(str(next_hop), med, communities, prepend)
    return result


def vip_serving(vips: dict[Prefix, list[str]], view: HealthView | None) -> dict[Prefix, bool]:
    """A VIP is servable while one of its listeners is; without a health view yet, none is."""
    if view is None:
        return dict.fromkeys(vips, False)
    return {
        prefix: any(view.listeners[name].serving for name in names if name in view.listeners)
        for prefix, names in vips.items()
    }
