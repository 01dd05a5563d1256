"""``anycastlb ips``: a tenant's addresses; reserving static IPs that outlive their load balancers."""

from functools import partial
from typing import Annotated, Literal

import typer

from anycastlb.control.cli import render
from anycastlb.control.cli.errors import InputError
from anycastlb.control.cli.options import DEFAULT_URL, OutputOption, TenantOption, TokenOption, UrlOption
from anycastlb.control.cli.session import command

__all__ = ["app"]

app = typer.Typer(help="A tenant's IP addresses: list, reserve (static), release.", no_args_is_help=True)


@app.command("list")
def list_addresses(
    every_tenant: Annotated[bool, typer.Option("--all", help="Every tenant's addresses (admin).")] = False,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """The tenant's addresses: dynamic VIPs and static (reserved) ones."""
    with command(url, token, output) as cmd:
        if every_tenant:
            if tenant:
                raise InputError("--all lists every tenant's addresses; leave out --tenant")
            cmd.show(cmd.get("/v1/ips"), partial(render.addresses, with_tenant=True))
            return
        cmd.show(cmd.get("/v1/tenants/{}/ips", cmd.acting_tenant(tenant)), render.addresses)


@app.command("reserve")
def reserve(
    address: Annotated[
        str | None,
        typer.Option(
            "--address", help="This address (free, or already a VIP of the tenant).", show_default=False
        ),
    ] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="From this pool.", show_default=False)] = None,
    family: Annotated[
        Literal["ipv4", "ipv6"] | None,
        typer.Option("--family", help="ipv4 or ipv6. Default: ipv4, or the --address's.", show_default=False),
    ] = None,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Reserve a static IP: the given address, or the next free one. Kept until released."""
    body = {
        key: value
        for key, value in (("address", address), ("pool", pool), ("family", family))
        if value is not None
    }
    with command(url, token, output) as cmd:
        reserved = cmd.post("/v1/tenants/{}/ips/reserve", cmd.acting_tenant(tenant), body=body)
        cmd.show(reserved, render.address)


@app.command("release")
def release(
    address: Annotated[str, typer.Argument(help="A static address of the tenant.", show_default=False)],
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Give a static address back to its pool; refused while a load balancer uses it."""
    with command(url, token) as cmd:
        cmd.delete("/v1/tenants/{}/ips/{}", cmd.acting_tenant(tenant), address)
        cmd.say(f"released {address}")
