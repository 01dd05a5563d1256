"""The follower reads the PoP's BGP sessions back from the bgp helper's gauge (multiprocess files)."""

import os
import subprocess
import sys
from pathlib import Path

from anycastlb.edge.bgp_sessions import bgp_sessions
from anycastlb.model.desired import BgpSession

_HELPER = """
from anycastlb.bgp.metrics import SESSION_UP
SESSION_UP.labels("192.0.2.2").set(0)
SESSION_UP.labels("192.0.2.1").set(1)
"""


def test_each_peer_is_read_as_the_bgp_helper_set_it(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", _HELPER], env=env, check=True)  # another process, as at a PoP
    (tmp_path / "gauge_livemax_999999.db").write_bytes(b"")  # a file being created: skipped

    assert bgp_sessions(str(tmp_path)) == (
        BgpSession(peer="192.0.2.1", up=True),
        BgpSession(peer="192.0.2.2", up=False),
    )


def test_without_a_metrics_directory_or_a_speaker_there_are_no_sessions(tmp_path: Path) -> None:
    assert bgp_sessions(None) == ()
    assert bgp_sessions(str(tmp_path)) == ()
