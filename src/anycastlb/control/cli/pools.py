"""``anycastlb pools``: the IP pools VIPs come from (the admin manages them; tenants read theirs)."""

from typing import Annotated

import typer

from anycastlb.control.cli import render
from anycastlb.control.cli.errors import InputError
from anycastlb.control.cli.options import DEFAULT_URL, OutputOption, TokenOption, UrlOption
from anycastlb.control.cli.session import command

__all__ = ["app"]

app = typer.Typer(help="IP pools: the prefixes VIPs are allocated from.", no_args_is_help=True)

PoolName = Annotated[str, typer.Argument(help="The pool's name.", show_default=False)]
Reserved = Annotated[
    list[str] | None,
    typer.Option(
        "--reserved",
        help="Addresses never handed out automatically: FIRST-LAST, a CIDR or one address (repeatable).",
        show_default=False,
    ),
]

SniSharing = Annotated[
    str | None,
    typer.Option(
        "--sni-sharing",
        help="Who may share an address on one port by TLS SNI: 'tenant' (default) or 'pool' "
        "(any tenant naming this pool and the same sharing key).",
        show_default=False,
    ),
]


@app.command("create")
def create(
    name: PoolName,
    networks: Annotated[
        list[str],
        typer.Option("--network", help="A prefix, e.g. 203.0.113.0/24 (repeatable).", show_default=False),
    ],
    reserved: Reserved = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner", help="The tenant owning this BYOIP pool. Default: the platform's.", show_default=False
        ),
    ] = None,
    auto_assign: Annotated[
        bool, typer.Option("--auto-assign/--no-auto-assign", help="Allocate from it when no pool is named.")
    ] = True,
    sni_sharing: SniSharing = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Create a pool (admin). Prefixes of different pools may not overlap."""
    body = {
        "name": name,
        "networks": networks,
        "reserved": reserved or [],
        "owner": owner,
        "auto_assign": auto_assign,
        **({"sni_sharing": sni_sharing} if sni_sharing is not None else {}),
    }
    with command(url, token, output) as cmd:
        cmd.show(cmd.post("/v1/pools", body=body), render.pool)


@app.command("list")
def list_pools(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """Pools with their use (a tenant sees the platform's and its own)."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/pools"), render.pools)


@app.command("show")
def show(
    name: PoolName, url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """One pool."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/pools/{}", name), render.pool)


@app.command("set")
def set_pool(
    name: PoolName,
    auto_assign: Annotated[
        bool | None,
        typer.Option(
            "--auto-assign/--no-auto-assign",
            help="Allocate from it when no pool is named.",
            show_default=False,
        ),
    ] = None,
    reserved: Reserved = None,
    clear_reserved: Annotated[
        bool, typer.Option("--clear-reserved", help="Remove every reserved range.")
    ] = False,
    sni_sharing: SniSharing = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Change a pool (admin): --reserved replaces the reserved ranges."""
    with command(url, token, output) as cmd:
        body: dict[str, object] = {}
        if auto_assign is not None:
            body["auto_assign"] = auto_assign
        if sni_sharing is not None:
            body["sni_sharing"] = sni_sharing
        if reserved and clear_reserved:
            raise InputError("give --reserved RANGE or --clear-reserved, not both")
        if reserved or clear_reserved:
            body["reserved"] = reserved or []
        if not body:
            raise InputError(
                "nothing to change: give --auto-assign/--no-auto-assign, --sni-sharing tenant|pool, "
                "--reserved RANGE or --clear-reserved"
            )
        cmd.show(cmd.patch("/v1/pools/{}", name, body=body), render.pool)


@app.command("delete")
def delete(name: PoolName, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Delete a pool (admin); refused while any of its addresses is held."""
    with command(url, token) as cmd:
        cmd.delete("/v1/pools/{}", name)
        cmd.say(f"deleted pool {name}")
