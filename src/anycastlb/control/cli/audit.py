"""``anycastlb audit``: who changed what, when (``GET /v1/audit``; newest first)."""

from typing import Annotated, Any

import typer

from anycastlb.control.cli.options import (
    DEFAULT_URL,
    JsonOption,
    OutputOption,
    TokenOption,
    UrlOption,
    output_format,
)
from anycastlb.control.cli.session import command, print_json, print_rich

__all__ = ["audit", "audit_table"]

Json = dict[str, Any]


def audit(
    since: Annotated[
        str | None, typer.Option("--since", help="From this time on (ISO 8601, e.g. 2026-12-03T20:00Z).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time (ISO 8601).")] = None,
    object_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="tenant, token, tenant_limits, pool, load_balancer, address, pop, pop_credential."
        ),
    ] = None,
    object_name: Annotated[str | None, typer.Option("--object", help="The object's name.")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help='"admin", a tenant or PoP name, or a token id.')
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Entries per page.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after a page (the cursor it printed).")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Follow the cursor to the oldest entry.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = "table",
) -> None:
    """Changes made through the control plane, newest first: the admin sees all, a tenant those of
    its own objects."""
    output = output_format(output, as_json)
    query = {
        "since": since,
        "until": until,
        "type": object_type,
        "object": object_name,
        "actor": actor,
        "limit": str(limit),
    }
    params = {key: value for key, value in query.items() if value is not None}
    entries: list[Json] = []
    with command(url, token, output) as cmd:
        while True:
            page = cmd.client.send(
                "GET", "/v1/audit", params={**params, **({"cursor": cursor} if cursor else {})}
            ).body
            entries += page["entries"]
            cursor = page["next_cursor"]
            if not every or cursor is None:
                break
        if output == "json":
            print_json({"entries": entries, "next_cursor": cursor})
        else:
            print_rich(audit_table(entries))
        if cursor is not None:
            cmd.say(f"older entries: --cursor {cursor} (or --all)")


def _version(row: Json) -> str:
    before, after = row.get("version_before"), row.get("version_after")
    if before is None and after is None:
        return "-"
    return f"{'-' if before is None else before}→{'-' if after is None else after}"


def audit_table(rows: list[Json]) -> Any:  # noqa: ANN401 - a rich Table (rich loads lazily)
    from rich import box  # noqa: PLC0415 - rich: ~20 ms at every `anycastlb` start
    from rich.table import Table  # noqa: PLC0415

    table = Table(header_style="bold", box=box.SIMPLE)
    for header in (
        "TIME (UTC)",
        "ACTOR",
        "TOKEN",
        "ACTION",
        "TYPE",
        "OBJECT",
        "TENANT",
        "VERSION",
        "REQUEST",
    ):
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["at"])[:19].replace("T", " "),
            row["actor"],
            row.get("actor_token") or "-",
            row["action"],
            row["object_type"],
            row["object_name"],
            row.get("tenant") or "-",
            _version(row),
            row["request_id"],
        )
    return table
