"""``anycastlb lb``: a tenant's load balancers: apply a spec file, create from options, inspect."""

from pathlib import Path
from typing import Annotated, Literal

import typer

from anycastlb.control.cli import render
from anycastlb.control.cli.options import DEFAULT_URL, OutputOption, TenantOption, TokenOption, UrlOption
from anycastlb.control.cli.session import Command, command

__all__ = ["app"]

app = typer.Typer(help="Load balancers: VIPs, listeners, backends, PoPs.", no_args_is_help=True)

LbName = Annotated[str, typer.Argument(help="The load balancer's name.", show_default=False)]
_COLLECTION = "/v1/tenants/{}/loadbalancers"
_ONE = "/v1/tenants/{}/loadbalancers/{}"


@app.command("list")
def list_load_balancers(
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """The tenant's load balancers with their VIPs."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get(_COLLECTION, cmd.acting_tenant(tenant)), render.load_balancers)


@app.command("show")
def show(
    name: LbName,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """One load balancer: VIPs, listeners, backends (-o json: with its whole spec)."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get(_ONE, cmd.acting_tenant(tenant), name), render.load_balancer)


@app.command("status")
def status(
    name: LbName,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Per PoP: applied, listeners serving, backends up, VIPs announced."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get(_ONE + "/status", cmd.acting_tenant(tenant), name), render.load_balancer_status)


@app.command("apply")
def apply(
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            help="A YAML or JSON file holding a LoadBalancerSpec (-: stdin).",
            show_default=False,
        ),
    ],
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Create the load balancer, or update it to exactly this spec (the same spec changes nothing)."""
    from anycastlb.control.cli.lb_spec import load_spec_file, request_body  # noqa: PLC0415 - lean start-up

    with command(url, token, output) as cmd:
        spec = load_spec_file(file)  # before any request: a typo costs no round trip
        answer = cmd.send("PUT", _ONE, cmd.acting_tenant(tenant), spec.name, body=request_body(spec))
        _report(cmd, answer.body, "created" if answer.status == 201 else "applied")


@app.command("create")
def create(
    name: LbName,
    ports: Annotated[
        list[int],
        typer.Option("--port", help="A listener's port (repeatable).", min=1, max=65535, show_default=False),
    ],
    backends: Annotated[
        list[str],
        typer.Option(
            "--backend",
            help="ADDRESS:PORT every listener forwards to, e.g. 10.0.0.11:30443 (repeatable).",
            show_default=False,
        ),
    ],
    proxy_protocol: Annotated[
        Literal["none", "v1", "v2"] | None,
        typer.Option("--proxy-protocol", help="none, v1 or v2. Default: v2.", show_default=False),
    ] = None,
    ip_count: Annotated[
        int | None, typer.Option("--ip-count", help="VIPs per family. Default: 1.", min=1, show_default=False)
    ] = None,
    families: Annotated[
        list[str] | None,
        typer.Option("--family", help="ipv4 and/or ipv6 (repeatable). Default: ipv4.", show_default=False),
    ] = None,
    addresses: Annotated[
        list[str] | None, typer.Option("--address", help="A specific VIP (repeatable).", show_default=False)
    ] = None,
    pool: Annotated[
        str | None, typer.Option("--pool", help="Allocate VIPs from this pool.", show_default=False)
    ] = None,
    sharing_key: Annotated[
        str | None,
        typer.Option(
            "--sharing-key",
            help="Share a VIP with the tenant's load balancers of the same key.",
            show_default=False,
        ),
    ] = None,
    pops: Annotated[
        list[str] | None,
        typer.Option(
            "--pop", help="Serve it at this PoP only (repeatable). Default: every PoP.", show_default=False
        ),
    ] = None,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Create a load balancer from options: one listener per --port, each forwarding to every --backend."""
    from anycastlb.control.cli.lb_spec import request_body, spec_from_options  # noqa: PLC0415

    with command(url, token, output) as cmd:
        spec = spec_from_options(
            name,
            ports=ports,
            backends=backends,
            proxy_protocol=proxy_protocol,
            ip_count=ip_count,
            families=families,
            addresses=addresses,
            pool=pool,
            sharing_key=sharing_key,
            pops=pops,
        )
        created = cmd.post(_COLLECTION, cmd.acting_tenant(tenant), body=request_body(spec))
        _report(cmd, created, "created")


@app.command("delete")
def delete(
    name: LbName, tenant: TenantOption = None, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """Stop serving it everywhere; dynamic VIPs are freed, reserved (static) ones stay the tenant's."""
    with command(url, token) as cmd:
        cmd.delete(_ONE, cmd.acting_tenant(tenant), name)
        cmd.say(f"deleted load balancer {name}")


def _report(cmd: Command, load_balancer: dict[str, object], what: str) -> None:
    cmd.show(load_balancer, render.load_balancer)
    name = load_balancer["name"]
    cmd.say(
        f"{what} {name} version {load_balancer['version']}; `anycastlb lb status {name}` shows where it runs"
    )
