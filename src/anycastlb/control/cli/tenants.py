"""``anycastlb tenants``: tenants and their API tokens (the admin; a tenant may manage its own tokens)."""

from typing import Annotated

import typer

from anycastlb.control.cli import render
from anycastlb.control.cli.options import DEFAULT_URL, OutputOption, TokenOption, UrlOption
from anycastlb.control.cli.session import command, print_json

__all__ = ["app"]

app = typer.Typer(help="Tenants and their API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="A tenant's API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

TenantName = Annotated[str, typer.Argument(help="The tenant's name.", show_default=False)]


@app.command("create")
def create(
    name: TenantName, url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = "table"
) -> None:
    """Create a tenant (admin). Then give it a token: `anycastlb tenants token create NAME`."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.post("/v1/tenants", body={"name": name}), render.tenant)


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
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """A new API token for the tenant; its secret is printed once."""
    with command(url, token, output) as cmd:
        created = cmd.post("/v1/tenants/{}/tokens", name, body={"description": description})
        if output == "json":
            print_json(created)
        else:
            typer.echo(f"token {created['token_id']} for tenant {name}:")
            typer.echo(created["secret"])  # plain: rich would fold a long secret across lines
        cmd.say("Store it now: it will not be shown again (use it as ANYCASTLB_TOKEN).")


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
    """Revoke one token: requests with it are refused from now on."""
    with command(url, token) as cmd:
        cmd.delete("/v1/tenants/{}/tokens/{}", name, token_id)
        cmd.say(f"revoked token {token_id} of tenant {name}")
