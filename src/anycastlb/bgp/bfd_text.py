"""The BFD sidecar's BIRD configuration, as a pure function (golden-tested).

ExaBGP has no BFD, and without it a PoP that dies silently (power, a switch between it and the
router) is noticed only when the BGP hold timer expires: seconds. A BIRD that runs nothing but BFD
beside the speaker answers the router's BFD session; the router's BGP protocol (``bfd on``) drops
the session, and the routes, after ``interval x multiplier`` of silence.
"""

from anycastlb.model.bgp import BgpConfig

__all__ = ["render_bfd_config"]


def render_bfd_config(config: BgpConfig) -> str:
    interval_ms = round(config.bfd_interval * 1000)
    lines = [
        f"router id {config.router_id};",
        "protocol device { }",
        "protocol bfd {",
        '    interface "*" {',
        f"        min rx interval {interval_ms} ms;",
        f"        min tx interval {interval_ms} ms;",
        f"        multiplier {config.bfd_multiplier};",
        "    };",
    ]
    for peer in config.peers:
        if peer.bfd:
            local = f" local {peer.local_address}" if peer.local_address is not None else ""
            lines.append(f"    neighbor {peer.address}{local};")
    lines += ["}", ""]
    return "\n".join(lines)
