"""``lab acme``'s verdict: every promise the run does not show is named, and a good run has none."""

import dataclasses
import io

from rich.console import Console

from anycastlb.lab.acme_report import problems, render_acme
from anycastlb.lab.acme_result import AccessLine, AcmeRun, Issued, Probed

DOMAIN, CLIENT, POP = "shop.anycastlb.test", "10.40.0.2", "10.41.0.1"
CHALLENGE_URI = "/.well-known/acme-challenge/tok"


def _run(**changes: object) -> AcmeRun:
    issued = Issued(
        DOMAIN,
        ("tok",),
        (DOMAIN,),
        "CN=Pebble Intermediate CA 1",
        "aa",
        2,
        1.0,
        (AccessLine(CLIENT, POP, 8080, 200, CHALLENGE_URI),),
        1,
    )
    probed = Probed(True, "TLSv1.3", (DOMAIN,), "aa", f"tls {DOMAIN} client={CLIENT}", 1)
    run = AcmeRun(DOMAIN, "198.18.0.10", CLIENT, POP, issued, probed)
    return dataclasses.replace(run, **changes)  # type: ignore[arg-type]


def test_a_run_that_shows_every_step_has_no_problem_and_prints_acme_ok() -> None:
    assert problems(_run()) == []
    out = io.StringIO()
    render_acme(Console(file=out, width=100), _run())
    assert "acme ok" in out.getvalue() and "tok" in out.getvalue()


def test_a_challenge_that_did_not_come_through_the_pop_is_named() -> None:
    bypass = dataclasses.replace(
        _run().issued, challenge_requests=(AccessLine(CLIENT, CLIENT, 8080, 200, CHALLENGE_URI),)
    )
    [problem] = problems(_run(issued=bypass))
    assert f"came from {CLIENT} via {CLIENT}" in problem and f"via the PoP ({POP})" in problem


def test_another_certificate_on_443_and_silent_counters_are_named() -> None:
    issued = dataclasses.replace(_run().issued, http_connections=0)
    probed = dataclasses.replace(_run().probed, leaf_sha256="bb", https_connections=0)
    found = problems(_run(issued=issued, probed=probed))
    assert any("another certificate than the one issued" in p for p in found)
    assert any("VIP:80 listener counted no connection" in p for p in found)
    assert any("VIP:443 listener counted no connection" in p for p in found)
    out = io.StringIO()
    render_acme(Console(file=out, width=100), _run(issued=issued, probed=probed))
    assert "acme FAILED" in out.getvalue()
