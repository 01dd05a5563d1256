"""The BFD sidecar's BIRD config: one neighbour per peer with bfd: true, the configured timers."""

from anycastlb.bgp.bfd_text import render_bfd_config
from anycastlb.model.bgp import BgpConfig


def test_only_peers_with_bfd_get_a_session_with_the_configured_timers() -> None:
    config = BgpConfig.model_validate(
        {
            "local_as": 65001,
            "router_id": "10.0.1.2",
            "bfd_interval": "50ms",
            "bfd_multiplier": 4,
            "peers": [
                {"address": "10.0.1.1", "remote_as": 65000, "local_address": "10.0.1.2", "bfd": True},
                {"address": "10.0.2.1", "remote_as": 65000},
            ],
        }
    )
    rendered = render_bfd_config(config)
    assert "min rx interval 50 ms;" in rendered
    assert "multiplier 4;" in rendered
    assert "neighbor 10.0.1.1 local 10.0.1.2;" in rendered
    assert "10.0.2.1" not in rendered
    assert rendered.startswith("router id 10.0.1.2;")
