"""``anycastlb pops``: the edge sites (the admin registers them; each follows its desired state)."""

from typing import Annotated

import typer

from anycastlb.control.cli import render
from anycastlb.control.cli.lifetimes import GraceOption, TtlOption, seconds
from anycastlb.control.cli.options import DEFAULT_URL, OutputOption, TokenOption, UrlOption
from anycastlb.control.cli.session import command, print_json

__all__ = ["app"]

app = typer.Typer(help="PoPs: the edge sites that serve load balancers.", no_args_is_help=True)

PopName = Annotated[str, typer.Argument(help="The PoP's name.", show_default=False)]


TunnelEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--tunnel-endpoint",
        help="The PoP's public address that nodes dial for tunnels (each cluster has its own port).",
    ),
]


@app.command("create")
def create(
    name: PopName,
    tunnel_endpoint: TunnelEndpointOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Register a PoP (admin); its credential is printed once."""
    with command(url, token, output) as cmd:
        created = cmd.post("/v1/pops", body={"name": name, "tunnel_endpoint": tunnel_endpoint})
        if output == "json":
            print_json(created)
        else:
            typer.echo(f"PoP {name} registered; its credential ({created['token']['token_id']}):")
            typer.echo(created["token"]["secret"])  # plain: rich would fold a long secret across lines
            typer.echo(
                "Run its edge with: ANYCASTLB_POP_TOKEN=<credential> anycastlb edge "
                f"--control {cmd.client.url} --pop {name}"
            )
        cmd.say("Store it now: it will not be shown again.")


@app.command("list")
def list_pops(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """Every PoP: desired vs applied version, last report, listeners serving, announced VIPs, problems."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/pops"), render.pops)


@app.command("show")
def show(
    name: PopName, url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """One PoP (the admin, or the PoP itself)."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/pops/{}", name), render.pop)


@app.command("set-tunnel-endpoint")
def set_tunnel_endpoint(
    name: PopName,
    address: Annotated[str, typer.Argument(help="The public address nodes dial; 'none' removes it.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Set the PoP's public tunnel address (admin): every cluster's node configs change with it."""
    with command(url, token, output) as cmd:
        endpoint = None if address == "none" else address
        cmd.show(
            cmd.send("PUT", "/v1/pops/{}/tunnel-endpoint", name, body={"tunnel_endpoint": endpoint}).body,
            render.pop,
        )


@app.command("delete")
def delete(name: PopName, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Unregister a PoP (admin); its credential stops working."""
    with command(url, token) as cmd:
        cmd.delete("/v1/pops/{}", name)
        cmd.say(f"deleted PoP {name}")


@app.command("desired")
def desired(name: PopName, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """The complete desired state the PoP follows, as JSON (what its edge receives)."""
    with command(url, token) as cmd:
        print_json(cmd.get("/v1/pops/{}/desired", name))


@app.command("rotate-credential")
def rotate_credential(
    name: PopName,
    grace: GraceOption = "1h",
    ttl: TtlOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """A new credential for the PoP (admin), printed once. Its old credentials keep working for
    --grace (default 1h): install the new one as the edge's ANYCASTLB_POP_TOKEN and restart the
    edge within that time. Never expires unless --ttl (or the old credential's lifetime) says so."""
    with command(url, token, output) as cmd:
        body = {"grace_seconds": seconds(grace, "--grace"), "ttl_seconds": seconds(ttl, "--ttl")}
        created = cmd.post("/v1/pops/{}/credentials/rotate", name, body=body)
        if output == "json":
            print_json(created)
        else:
            expires = created.get("expires_at") or "never"
            typer.echo(f"PoP {name}: new credential {created['token_id']} (expires: {expires}):")
            typer.echo(created["secret"])
        cmd.say(f"Store it now; the old credentials stop working in {grace}.")


@app.command("credentials")
def credentials(
    name: PopName, url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """The PoP's credentials (admin): ids and expiry, never secrets."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/pops/{}/credentials", name), render.tokens)
