"""``anycastlb usage``: traffic per load balancer and VIP, summed over PoPs (GET /v1/usage for the
admin, GET /v1/tenants/{tenant}/usage for a tenant)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import typer

from anycastlb.control.cli.errors import InputError
from anycastlb.control.cli.options import (
    DEFAULT_URL,
    JsonOption,
    OutputOption,
    TokenOption,
    UrlOption,
    output_format,
    tenant_option,
)
from anycastlb.control.cli.session import command, print_json, print_rich
from anycastlb.model.duration import parse_duration

__all__ = ["usage"]

TenantOption = Annotated[
    str | None,
    tenant_option("Only this tenant. Default: the token's own tenant; for the admin, every tenant."),
]
_TIME_HELP = "An RFC 3339 time (2026-12-01T00:00:00Z) or a duration before now (24h, 30m)."


def moment(text: str, now: datetime, option: str) -> str:
    """``--since``/``--until`` as the API wants it: a time as given, a duration as now minus it."""
    try:
        return (now - timedelta(seconds=parse_duration(text))).isoformat()
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise InputError(f"{option} {text!r}: {_TIME_HELP}") from None


def usage(
    tenant: TenantOption = None,
    since: Annotated[str, typer.Option("--since", help=_TIME_HELP)] = "24h",
    until: Annotated[str | None, typer.Option("--until", help=f"Default: now. {_TIME_HELP}")] = None,
    step: Annotated[str, typer.Option("--step", help="Steps of the JSON points: a multiple of 1m.")] = "1h",
    load_balancer: Annotated[
        str | None, typer.Option("--load-balancer", "--lb", help="Only this load balancer.")
    ] = None,
    json_: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Bytes in (clients to the VIP), bytes out (back to clients) and connections per load
    balancer and VIP, summed over every PoP. A tenant sees its own; the admin every tenant's
    (--tenant for one)."""
    output = output_format(output, json_)
    now = datetime.now(UTC)
    params = {"since": moment(since, now, "--since"), "step": step}
    if until is not None:
        params["until"] = moment(until, now, "--until")
    if load_balancer:
        params["load_balancer"] = load_balancer
    with command(url, token, output) as cmd:
        caller = cmd.get("/v1/whoami")
        if caller["kind"] == "admin":
            if tenant:
                params["tenant"] = tenant
            answer = cmd.client.send("GET", "/v1/usage", params=params).body
        else:
            own = quote(cmd.acting_tenant(tenant), safe="")
            answer = cmd.client.send("GET", f"/v1/tenants/{own}/usage", params=params).body
        if output == "json":
            print_json(answer)
        else:
            print_rich(table(answer))


def table(answer: dict[str, Any]) -> Any:  # noqa: ANN401 - a rich Table, imported lazily
    from rich import box  # noqa: PLC0415 - rich: ~20 ms at every `anycastlb` start
    from rich.table import Table  # noqa: PLC0415

    title = f"{answer['since']} to {answer['until']}"
    result = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE)
    for header in ("TENANT", "LOAD BALANCER", "VIP", "BYTES IN", "BYTES OUT", "CONNECTIONS"):
        numbers = header.startswith(("BYTES", "CONN"))
        result.add_column(header, overflow="fold", justify="right" if numbers else "left")
    for series in answer["series"]:
        total = series["total"]
        result.add_row(
            series["tenant"],
            series["load_balancer"],
            series["vip"],
            str(total["bytes_in"]),
            str(total["bytes_out"]),
            str(total["connections"]),
        )
    return result
