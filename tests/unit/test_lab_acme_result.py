"""Reading the ACME lab's evidence: the node's access log, the edge's counters, the clients' JSON."""

import pytest

from anycastlb.lab.acme_result import AccessLine, Issued, Probed, backend_up, connections, parse_access_log

METRICS = """\
# HELP anycastlb_connections_total Client connections accepted by a listener
# TYPE anycastlb_connections_total counter
anycastlb_connections_total{listener="http"} 3.0
anycastlb_connections_total{listener="https"} 1.0
# HELP anycastlb_backend_up Backend health
# TYPE anycastlb_backend_up gauge
anycastlb_backend_up{backend="10.41.0.2:8080",listener="http"} 1.0
anycastlb_backend_up{backend="10.41.0.2:8443",listener="https"} 0.0
"""


def test_an_access_log_line_gives_the_proxied_client_the_tcp_peer_port_status_and_uri() -> None:
    text = "10.40.0.2 10.41.0.1 8080 200 /.well-known/acme-challenge/abc?x=1 y\n"
    assert parse_access_log(text) == [
        AccessLine("10.40.0.2", "10.41.0.1", 8080, 200, "/.well-known/acme-challenge/abc?x=1 y")
    ]
    assert parse_access_log("") == []


@pytest.mark.parametrize("line", ["10.40.0.2 10.41.0.1 8080 200", "a b port 200 /", "a b 80 OK /"])
def test_a_line_of_another_format_is_refused_and_quoted(line: str) -> None:
    with pytest.raises(ValueError, match="not a line of the node's access log format") as refused:
        parse_access_log(line)
    assert repr(line) in str(refused.value)


def test_connections_are_counted_per_listener_and_zero_before_the_first() -> None:
    assert connections(METRICS, "http") == 3
    assert connections(METRICS, "https") == 1
    assert connections(METRICS, "other") == 0


def test_a_listener_is_up_only_when_it_has_backends_and_all_are_up() -> None:
    assert backend_up(METRICS, "http")
    assert not backend_up(METRICS, "https")
    assert not backend_up(METRICS, "other")


def test_the_clients_json_becomes_typed_results() -> None:
    line = AccessLine("10.40.0.2", "10.41.0.1", 8080, 200, "/.well-known/acme-challenge/t")
    issued = Issued.from_client(
        {
            "domain": "d.test",
            "tokens": ["t"],
            "san": ["d.test"],
            "issuer": "CN=Pebble Intermediate CA 1",
            "leaf_sha256": "ab",
            "chain_length": 2,
            "seconds": 1.5,
        },
        [line],
        3,
    )
    assert (issued.tokens, issued.san, issued.challenge_requests, issued.http_connections) == (
        ("t",),
        ("d.test",),
        (line,),
        3,
    )
    probed = Probed.from_client(
        {"verified": True, "tls_version": "TLSv1.3", "san": ["d.test"], "leaf_sha256": "ab", "body": "x"}, 1
    )
    assert (probed.verified, probed.san, probed.https_connections) == (True, ("d.test",), 1)
    with pytest.raises(KeyError, match="leaf_sha256"):
        Probed.from_client({"verified": True, "tls_version": "", "san": [], "body": ""}, 0)
