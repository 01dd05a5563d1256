"""``anycastlb clusters``: a tenant's clusters whose nodes reach the PoPs through WireGuard tunnels.

The controller (``anycastlb controller --tunnels``) creates its cluster and registers its nodes
itself; these commands are for looking, for a cluster run without the controller, and for key
rotation (``rotate``: make before break, docs/control-plane.md "Rotation").
"""

from typing import Annotated

import typer

from anycastlb.control.cli import render
from anycastlb.control.cli.options import DEFAULT_URL, OutputOption, TenantOption, TokenOption, UrlOption
from anycastlb.control.cli.session import command, print_json

__all__ = ["app"]

app = typer.Typer(help="Clusters: tunnel networks, nodes and their keys.", no_args_is_help=True)

ClusterName = Annotated[str, typer.Argument(help="The cluster's name (the controller's --cluster).")]


@app.command("list")
def list_clusters(
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """The tenant's clusters: tunnel network, UDP port, nodes, nodes still rotating."""
    with command(url, token, output) as cmd:
        cmd.show(cmd.get("/v1/tenants/{}/clusters", cmd.acting_tenant(tenant)), render.clusters)


@app.command("create")
def create(
    name: ClusterName,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Create the cluster with tunnels on (idempotent): its network, its port, a key per PoP."""
    with command(url, token, output) as cmd:
        acting = cmd.acting_tenant(tenant)
        cmd.show(
            cmd.send("PUT", "/v1/tenants/{}/clusters/{}", acting, name, body={"tunnels": True}).body,
            render.clusters_one,
        )


@app.command("show")
def show(
    name: ClusterName,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """The cluster and each node's tunnel address(es)."""
    with command(url, token, output) as cmd:
        acting = cmd.acting_tenant(tenant)
        cmd.show(cmd.get("/v1/tenants/{}/clusters/{}/nodes", acting, name), render.cluster_nodes)


@app.command("set-nodes")
def set_nodes(
    name: ClusterName,
    nodes: Annotated[list[str], typer.Argument(help="Every node's name (the complete set).")],
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Register the cluster's complete node set (what the controller does by itself)."""
    with command(url, token, output) as cmd:
        acting = cmd.acting_tenant(tenant)
        answer = cmd.send("PUT", "/v1/tenants/{}/clusters/{}/nodes", acting, name, body={"nodes": nodes}).body
        cmd.show(answer, render.cluster_nodes)


@app.command("node-configs")
def node_configs(
    name: ClusterName, tenant: TenantOption = None, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """Every node's tunnel config as JSON (each with the node's PRIVATE key: handle as a secret)."""
    with command(url, token) as cmd:
        print_json(cmd.get("/v1/tenants/{}/clusters/{}/tunnel", cmd.acting_tenant(tenant), name))


@app.command("rotate")
def rotate(
    name: ClusterName,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """New keys and tunnel addresses for every node; the old ones stay PoP peers for the grace
    period, and the controller lists both addresses meanwhile (make before break)."""
    with command(url, token, output) as cmd:
        acting = cmd.acting_tenant(tenant)
        cmd.show(cmd.post("/v1/tenants/{}/clusters/{}/rotate", acting, name, body=None), render.cluster_nodes)
        cmd.say("Rotated: the controller writes the new keys to the anycastlb-tunnel Secret now.")


@app.command("delete")
def delete(
    name: ClusterName, tenant: TenantOption = None, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """Delete the cluster: its keys, and its interfaces on every PoP."""
    with command(url, token) as cmd:
        cmd.delete("/v1/tenants/{}/clusters/{}", cmd.acting_tenant(tenant), name)
        cmd.say(f"deleted cluster {name}")
