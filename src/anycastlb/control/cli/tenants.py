"""``anycastlb tenants``: tenants and their API tokens (the admin; a tenant may manage its own tokens)."""

from typing import Annotated, Any

import typer

from anycastlb.control.cli import render
from anycastlb.control.cli.lifetimes import GraceOption, TtlOption, seconds
from anycastlb.control.cli.options import DEFAULT_URL, OutputOption, TokenOption, UrlOption
from anycastlb.control.cli.session import command, print_json

__all__ = ["app"]

app = typer.Typer(help="Tenants and their API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="A tenant's API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

TenantName = Annotated[str, typer.Argument(help="The tenant's name.", show_default=False)]
AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-backend-network",
        help="A private network (RFC 1918, 100.64.0.0/10, fc00::/7) the tenant's backends may use, e.g. "
        "an on-premises cluster. Repeatable.",
        show_default=False,
    ),
]


@app.command("create")
def create(
    name: TenantName,
    allow: AllowOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Create a tenant (admin). Then give it a token: `anycastlb tenants token create NAME`."""
    with command(url, token, output) as cmd:
        body = {"name": name, "allowed_backend_networks": allow or []}
        cmd.show(cmd.post("/v1/tenants", body=body), render.tenant)


@app.command("update")
def update(
    name: TenantName,
    allow: AllowOption = None,
    no_private_backends: Annotated[
        bool, typer.Option("--no-private-backends", help="Clear the list: no private backends.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Change a tenant's settings (admin): the private networks its backends may use (the list
    given replaces the previous one)."""
    if not allow and not no_private_backends:
        raise typer.BadParameter("give --allow-backend-network CIDR (repeatable) or --no-private-backends")
    with command(url, token, output) as cmd:
        body = {"allowed_backend_networks": [] if no_private_backends else allow}
        cmd.show(cmd.patch("/v1/tenants/{}", name, body=body), render.tenant)


@app.command("list")
def list_tenants(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """Every tenant with its number of load balancers and addresses (admin)."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/tenants"), render.tenants)


@app.command("show")
def show(
    name: TenantName, url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """One tenant (the admin, or the tenant itself)."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/tenants/{}", name), render.tenant)


@app.command("delete")
def delete(name: TenantName, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Delete a tenant (admin); refused while it has load balancers, addresses or BYOIP pools."""
    with command(url, token) as cmd:
        cmd.delete("/v1/tenants/{}", name)
        cmd.say(f"deleted tenant {name}")


@token_app.command("create")
def create_token(
    name: TenantName,
    description: Annotated[str, typer.Option("--description", help="What the token is for.")] = "",
    ttl: TtlOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """A new API token for the tenant; its secret is printed once. It never expires unless --ttl
    says when; rotate it (`tenants token rotate`) before it does."""
    with command(url, token, output) as cmd:
        body = {"description": description, "ttl_seconds": seconds(ttl, "--ttl")}
        _print_secret(cmd.post("/v1/tenants/{}/tokens", name, body=body), name, output)
        cmd.say("Store it now: it will not be shown again (use it as ANYCASTLB_TOKEN).")


def _print_secret(created: dict[str, Any], tenant: str, output: str) -> None:
    if output == "json":
        print_json(created)
        return
    expires = created.get("expires_at") or "never"
    typer.echo(f"token {created['token_id']} for tenant {tenant} (expires: {expires}):")
    typer.echo(created["secret"])  # plain: rich would fold a long secret across lines


@token_app.command("rotate")
def rotate_token(
    name: TenantName,
    token_id: Annotated[str, typer.Argument(help="From `tenants token list`.", show_default=False)],
    grace: GraceOption = "1h",
    ttl: TtlOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """A new secret for the same tenant, printed once; the old one keeps working for --grace
    (default 1h) so a controller can switch without downtime. The new one keeps the old one's
    lifetime unless --ttl says otherwise."""
    with command(url, token, output) as cmd:
        body = {"grace_seconds": seconds(grace, "--grace"), "ttl_seconds": seconds(ttl, "--ttl")}
        _print_secret(cmd.post("/v1/tenants/{}/tokens/{}/rotate", name, token_id, body=body), name, output)
        cmd.say(f"Store it now; {token_id} stops working in {grace}.")


@token_app.command("list")
def list_tokens(
    name: TenantName, url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """The tenant's tokens: ids and descriptions, never secrets."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/tenants/{}/tokens", name), render.tokens)


@token_app.command("revoke")
def revoke_token(
    name: TenantName,
    token_id: Annotated[str, typer.Argument(help="From `tenants token list`.", show_default=False)],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Revoke one token: requests with it are refused from now on (every replica within 1 s)."""
    with command(url, token) as cmd:
        cmd.delete("/v1/tenants/{}/tokens/{}", name, token_id)
        cmd.say(f"revoked token {token_id} of tenant {name}")
