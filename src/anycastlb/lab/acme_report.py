"""``anycastlb lab acme``'s verdict and printout: what happened at each step, and what did not hold."""

from rich.console import Console
from rich.table import Table

from anycastlb.lab.acme_result import AcmeRun
from anycastlb.lab.wide import print_whole

__all__ = ["problems", "render_acme"]


def problems(run: AcmeRun) -> list[str]:
    """Every promise of the flow that the run does not show; [] when all hold."""
    found = []
    issued, probed = run.issued, run.probed
    if issued.san != (run.domain,):
        found.append(f"the certificate names {issued.san}, not {run.domain}")
    if not issued.challenge_requests:
        found.append("the node never logged a request for the token")
    for line in issued.challenge_requests:
        if (line.client, line.peer, line.status) != (run.client_address, run.pop_address, 200):
            found.append(
                f"a challenge request came from {line.client} via {line.peer} with status {line.status}, "
                f"not from pebble ({run.client_address}) via the PoP ({run.pop_address}) with 200"
            )
    if issued.http_connections < 1:
        found.append("the edge's VIP:80 listener counted no connection during the order")
    if not probed.verified or probed.san != (run.domain,):
        found.append(f"VIP:443 presented a certificate for {probed.san}, not {run.domain}")
    if probed.leaf_sha256 != issued.leaf_sha256:
        found.append("VIP:443 presented another certificate than the one issued")
    if f"client={run.client_address}" not in probed.body:
        found.append(f"the node did not see the TLS client's address: it answered {probed.body!r}")
    if probed.https_connections < 1:
        found.append("the edge's VIP:443 listener counted no connection during the TLS check")
    return found


def render_acme(console: Console, run: AcmeRun) -> None:
    """Each step and its evidence, one line each (uncut off a terminal), then the verdict."""
    issued, probed = run.issued, run.probed
    print_whole(
        console,
        f"[bold]ACME HTTP-01 through the edge[/]: pebble at {run.client_address} orders "
        f"{run.domain}, which resolves to the VIP {run.vip}",
    )
    table = Table(title="1. challenge validated via VIP:80 (the node's nginx access log)")
    for column in ("token", "client (PROXY header)", "TCP peer (PoP)", "node port", "status"):
        table.add_column(column)
    for line in issued.challenge_requests:
        token = line.uri.rsplit("/", 1)[-1]
        table.add_row(token, line.client, line.peer, str(line.port), str(line.status))
    print_whole(console, table)
    counted = f"+{issued.http_connections} connections during the order"
    print_whole(console, f"   edge listener http (VIP:80): {counted}")
    print_whole(
        console,
        f"2. certificate issued in {issued.seconds:.2f}s: SAN {', '.join(issued.san)}; "
        f"issuer {issued.issuer}; chain of {issued.chain_length}; leaf sha256 {issued.leaf_sha256[:16]}...",
        highlight=False,
    )
    print_whole(
        console,
        f"3. TLS through VIP:443 verified against pebble's root: {probed.tls_version}, SNI {run.domain}, "
        f"SAN {', '.join(probed.san)}, leaf sha256 {probed.leaf_sha256[:16]}... "
        f"({'the issued one' if probed.leaf_sha256 == issued.leaf_sha256 else 'NOT the issued one'}); "
        f"the node answered {probed.body!r}; edge listener https (VIP:443): "
        f"+{probed.https_connections} connections",
        highlight=False,
    )
    found = problems(run)
    for problem in found:
        console.print(f"[red]   not shown: {problem}[/]")
    console.print("[bold green]acme ok[/]" if not found else "[bold red]acme FAILED[/]")
