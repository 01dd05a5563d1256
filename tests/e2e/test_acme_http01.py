"""cert-manager's HTTP-01 path through the L4 edge, with pebble (Let's Encrypt's ACME test server).

pebble in the client namespace validates the challenge by fetching VIP:80; the edge forwards it
with a PROXY v2 header to the node's nginx, which serves the token; the certificate is issued, the
node serves it behind VIP:443, and a TLS client verifies it against pebble's root with SNI = the
domain. See anycastlb.lab.acme for the lab and why it has no router.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anycastlb.lab.acme import AcmeLab, missing_acme_peer
from anycastlb.lab.acme_plan import HTTP_NODE_PORT, TLS_NODE_PORT
from anycastlb.lab.acme_result import Issued
from anycastlb.lab.netns import LabError, namespace_exists, namespace_pids
from anycastlb.lab.processes import checkout_env
from tests.support.peers import ACME, NETNS, NGINX, PEBBLE, absent, require

# One worker runs this module's tests in order: they share one lab (pytest-xdist group "acme").
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("acme")]

require(NETNS, NGINX, PEBBLE, ACME)
_missing = missing_acme_peer()
if _missing is not None:
    absent(f"the ACME lab cannot run here: {_missing}")

NAME = f"ac{os.getpid() % 100000}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeLab]:
    with AcmeLab(tmp_path_factory.mktemp("acme"), NAME) as built:
        yield built


@pytest.fixture(scope="module")
def issued(lab: AcmeLab) -> Issued:
    return lab.issue()


def test_pebble_validates_http01_through_the_vip_and_the_node_sees_pebbles_real_address(
    lab: AcmeLab, issued: Issued
) -> None:
    topology = lab.topology
    assert issued.san == (topology.domain,)
    assert issued.issuer.startswith("CN=Pebble Intermediate CA"), issued.issuer
    assert issued.challenge_requests, f"the node never served the token; its log: {lab.access_log()}"
    for request in issued.challenge_requests:
        # The PROXY header carried pebble's own address; the TCP peer was the PoP: through the edge.
        assert (request.client, request.peer) == (topology.client_address, topology.pop_cluster_address)
        assert (request.port, request.status) == (HTTP_NODE_PORT, 200)
    assert issued.http_connections >= len(issued.challenge_requests), "the edge's VIP:80 counter"


def test_the_issued_certificate_is_served_through_vip_443_and_verifies_against_pebbles_root(
    lab: AcmeLab, issued: Issued
) -> None:
    lab.serve_certificate()
    probed = lab.verify_tls()
    assert probed.verified
    assert probed.san == (lab.topology.domain,)
    assert probed.leaf_sha256 == issued.leaf_sha256, "VIP:443 served another certificate than the issued one"
    # The edge relayed TLS untouched (nginx terminated it) and still told nginx the real client.
    assert probed.body == f"tls {lab.topology.domain} client={lab.topology.client_address}"
    assert probed.https_connections >= 1, "the edge's VIP:443 counter did not move"
    assert any(line.port == TLS_NODE_PORT and line.status == 200 for line in lab.access_log())


def test_a_token_the_ingress_does_not_serve_fails_validation_and_the_lab_is_removed(tmp_path: Path) -> None:
    """The same flow with the token written where nginx does not look: pebble must refuse, naming
    the URL it fetched through the VIP, and the lab must go away all the same."""
    name = f"an{os.getpid() % 100000}"
    lab = AcmeLab(tmp_path, name)
    with pytest.raises(LabError) as refused, lab:
        lab.issue(webroot=tmp_path / "not-served")
    message = str(refused.value)
    assert f"http://{lab.topology.domain}:80/.well-known/acme-challenge/" in message, message
    assert "404" in message, message
    assert [(line.client, line.status) for line in lab.access_log() if "acme-challenge" in line.uri] != []
    assert all(line.client == lab.topology.client_address for line in lab.access_log())
    assert not any(namespace_exists(ns) or namespace_pids(ns) for ns in lab.topology.namespaces())
    assert not Path(f"/etc/netns/{lab.topology.client}").exists()
    assert lab.processes == {}


def test_the_demo_step_prints_each_step_says_acme_ok_and_leaves_nothing_behind(tmp_path: Path) -> None:
    name, root = f"ad{os.getpid() % 100000}", tmp_path / "labs"
    done = subprocess.run(
        [sys.executable, "-m", "anycastlb.cli", "lab", "acme", "--name", name, "--state-root", str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=checkout_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = ("1. challenge validated via VIP:80", "2. certificate issued", "3. TLS through VIP:443 verified")
    assert all(step in done.stdout for step in steps), done.stdout
    assert "(the issued one)" in done.stdout and "acme ok" in done.stdout, done.stdout
    assert not root.exists(), "the state dir of a run that held every promise is removed"
    assert not any(namespace_exists(f"{name}-{role}") for role in ("client", "pop", "node"))
