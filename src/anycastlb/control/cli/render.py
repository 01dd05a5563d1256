"""The API's JSON as rich tables, one function per kind of answer.

They read plain JSON, not the server's pydantic models: those forbid unknown fields, so a CLI one
release older than its control plane would fail on every new field instead of ignoring it. Cells
fold instead of being cut with an ellipsis, so an address or a name is never lost in a narrow
terminal or a pipe (80 columns).
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

__all__ = [
    "address",
    "addresses",
    "load_balancer",
    "load_balancer_status",
    "load_balancers",
    "pool",
    "pools",
    "pop",
    "pops",
    "tenant",
    "tenants",
    "tokens",
]

Json = dict[str, Any]
_MINUTE, _HOUR, _DAY = 60, 3600, 86400


def _table(*headers: str, title: str | None = None) -> "Table":
    from rich import box  # noqa: PLC0415 - rich: ~20 ms at every `anycastlb` start
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _fields(rows: list[tuple[str, str]]) -> "Table":
    """One object as FIELD value lines."""
    from rich.table import Table  # noqa: PLC0415

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def _group(*parts: "RenderableType") -> "RenderableType":
    from rich.console import Group  # noqa: PLC0415

    return Group(*parts)


def _when(text: str | None) -> str:
    if not text:
        return "-"
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", _DAY), ("h", _HOUR), ("m", _MINUTE)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _yes(value: object) -> str:
    return "yes" if value else "no"


def _list(values: list[Any] | tuple[Any, ...] | None, empty: str = "-") -> str:
    return ", ".join(str(value) for value in values) if values else empty


def _problems(values: list[Any] | None, *, name_load_balancer: bool) -> str:
    """PoP problems, one per line: their messages, prefixed with the load balancer id in the admin's
    PoP views (a tenant's status view concerns one load balancer). A control plane of the previous
    release sends plain lines: shown as they are."""
    lines = []
    for problem in values or ():
        if isinstance(problem, str):
            lines.append(problem)
        elif name_load_balancer and problem.get("load_balancer"):
            lines.append(f"load balancer {problem['load_balancer']}: {problem['message']}")
        else:
            lines.append(str(problem["message"]))
    return "\n".join(lines) or "-"


def tenants(rows: list[Json]) -> "Table":
    table = _table("NAME", "LOAD BALANCERS", "ADDRESSES", "CREATED")
    for row in rows:
        table.add_row(
            row["name"], str(row["load_balancers"]), str(row["addresses"]), _when(row["created_at"])
        )
    return table


def tenant(row: Json) -> "Table":
    return _fields(
        [
            ("name", row["name"]),
            ("load balancers", str(row["load_balancers"])),
            ("addresses", str(row["addresses"])),
            ("private backends", _list(list(row.get("allowed_backend_networks") or ())) or "none"),
            ("created", _when(row["created_at"])),
        ]
    )


def tokens(rows: list[Json]) -> "Table":
    table = _table("TOKEN ID", "DESCRIPTION", "CREATED", "EXPIRES")
    for row in rows:
        expires = row.get("expires_at")
        table.add_row(
            row["token_id"],
            row["description"] or "-",
            _when(row["created_at"]),
            _when(expires) if expires else "never",
        )
    return table


def _capacity(row: Json) -> str:
    capacity: dict[str, int] = row.get("capacity") or {}
    return _list([f"{count} {family}" for family, count in capacity.items()])


def pools(rows: list[Json]) -> "Table":
    table = _table("NAME", "NETWORKS", "OWNER", "AUTO-ASSIGN", "IN USE", "CAPACITY", "RESERVED")
    for row in rows:
        table.add_row(
            row["name"],
            _list(row["networks"]),
            row["owner"] or "platform",
            _yes(row["auto_assign"]),
            str(row["in_use"]),
            _capacity(row),
            _list(row["reserved"]),
        )
    return table


def pool(row: Json) -> "Table":
    return _fields(
        [
            ("name", row["name"]),
            ("networks", _list(row["networks"])),
            ("owner", row["owner"] or "platform (every tenant)"),
            ("auto-assign", _yes(row["auto_assign"])),
            (
                "SNI sharing",
                "pool-wide (any tenant)" if row.get("sni_sharing") == "pool" else "within a tenant",
            ),
            ("in use", str(row["in_use"])),
            ("capacity", _capacity(row)),
            ("reserved", _list(row["reserved"])),
            ("created", _when(row["created_at"])),
        ]
    )


def addresses(rows: list[Json], *, with_tenant: bool = False) -> "Table":
    headers = ("ADDRESS", *(("TENANT",) if with_tenant else ()), "POOL", "STATIC", "SHARING KEY")
    table = _table(*headers, "LOAD BALANCERS", "CREATED")
    for row in rows:
        tenant_cell = (row["tenant"],) if with_tenant else ()
        table.add_row(
            row["address"],
            *tenant_cell,
            row["pool"],
            _yes(row["static"]),
            row["sharing_key"] or "-",
            _list(row["load_balancers"]),
            _when(row["created_at"]),
        )
    return table


def address(row: Json) -> "Table":
    return _fields(
        [
            ("address", row["address"]),
            ("tenant", row["tenant"]),
            ("pool", row["pool"]),
            ("static", _yes(row["static"])),
            ("sharing key", row["sharing_key"] or "-"),
            ("load balancers", _list(row["load_balancers"])),
            ("created", _when(row["created_at"])),
        ]
    )


def _ports(spec: Json) -> str:
    return _list([f"{item['port']}/{item.get('protocol', 'tcp')}" for item in spec["listeners"]])


def _backends(listener: Json) -> str:
    return _list([f"{item['address']}:{item['port']}" for item in listener.get("backends", ())])


def load_balancers(rows: list[Json]) -> "Table":
    table = _table("NAME", "ADDRESSES", "PORTS", "BACKENDS", "POPS", "VERSION", "UPDATED")
    for row in rows:
        spec = row["spec"]
        backends = {
            (backend["address"], backend["port"])
            for listener in spec["listeners"]
            for backend in listener.get("backends", ())
        }
        table.add_row(
            row["name"],
            _list(row["addresses"]),
            _ports(spec),
            str(len(backends)),
            _list(spec.get("pops"), empty="all"),
            str(row["version"]),
            _when(row["updated_at"]),
        )
    return table


def load_balancer(row: Json) -> "RenderableType":
    spec = row["spec"]
    ips = spec.get("ips") or {}
    summary = _fields(
        [
            ("name", row["name"]),
            ("tenant", row["tenant"]),
            ("version", str(row["version"])),
            ("addresses", _list(row["addresses"])),
            ("sharing key", ips.get("sharing_key") or "-"),
            ("pops", _list(spec.get("pops"), empty="all")),
            ("created", _when(row["created_at"])),
            ("updated", _when(row["updated_at"])),
        ]
    )
    listeners = _table("PORT", "PROXY", "BACKENDS", "HEALTH", title="listeners")
    for listener in spec["listeners"]:
        health = listener.get("health") or {}
        listeners.add_row(
            f"{listener['port']}/{listener.get('protocol', 'tcp')}",
            listener.get("proxy_protocol", "v2"),
            _backends(listener),
            health.get("type", "tcp"),
        )
    return _group(summary, "", listeners)


def load_balancer_status(row: Json) -> "RenderableType":
    state = "ready" if row["ready"] else "not ready"
    headline = (
        f"{row['name']} version {row['version']}: {state}; applied at {row['pops_applied']} and serving "
        f"at {row['pops_serving']} of {len(row['pops'])} PoPs; addresses {_list(row['addresses'])}"
    )
    table = _table("POP", "APPLIED", "SERVING", "BACKENDS UP", "ANNOUNCED", "STALE", "PROBLEMS")
    for pop_row in row["pops"]:
        table.add_row(
            pop_row["pop"],
            _yes(pop_row["applied"]),
            f"{pop_row['listeners_serving']}/{pop_row['listeners']}",
            f"{pop_row['backends_up']}/{pop_row['backends']}",
            _list(pop_row["announced"]),
            _yes(pop_row["stale"]),
            _problems(pop_row["problems"], name_load_balancer=False),
        )
    return _group(headline, table)


def _pop_state(row: Json) -> str:
    if row["last_report_at"] is None:
        return "no report yet"
    states = [name for name in ("stale", "draining") if row[name]]
    return ", ".join(states) or "ok"


def pops(rows: list[Json]) -> "Table":
    table = _table("NAME", "DESIRED", "APPLIED", "LAST REPORT", "STATE", "SERVING", "ANNOUNCED", "PROBLEMS")
    for row in rows:
        applied = row["applied_version"]
        table.add_row(
            row["name"],
            str(row["desired_version"]),
            "-" if applied is None else str(applied),
            _age(row["report_age_seconds"]),
            _pop_state(row),
            f"{row['listeners_serving']}/{row['listeners']}",
            _list(row["announced"]),
            _problems(row["problems"], name_load_balancer=True),
        )
    return table


def pop(row: Json) -> "Table":
    applied = row["applied_version"]
    return _fields(
        [
            ("name", row["name"]),
            ("desired version", str(row["desired_version"])),
            ("applied version", "-" if applied is None else str(applied)),
            ("last report", _age(row["report_age_seconds"])),
            ("state", _pop_state(row)),
            ("listeners serving", f"{row['listeners_serving']}/{row['listeners']}"),
            ("announced", _list(row["announced"])),
            ("problems", _problems(row["problems"], name_load_balancer=True)),
            ("tunnel endpoint", row.get("tunnel_endpoint") or "-"),
            ("created", _when(row["created_at"])),
        ]
    )


def clusters(rows: list[Json]) -> "Table":
    table = _table("NAME", "TUNNELS", "NETWORK", "PORT", "VERSION", "NODES", "ROTATING")
    for row in rows:
        table.add_row(
            row["name"],
            _yes(row["tunnels"]),
            row["network"],
            str(row["listen_port"]),
            str(row["version"]),
            str(row["nodes"]),
            str(row["rotating"]),
        )
    return table


def clusters_one(row: Json) -> "Table":
    return clusters([row])


def cluster_nodes(row: Json) -> "Table":
    table = _table(
        "NODE", "TUNNEL ADDRESS", "BACKENDS", "PREVIOUS KEY UNTIL", title=f"cluster {row['cluster']}"
    )
    for node in row["nodes"]:
        table.add_row(
            node["name"], node["address"], _list(node["backend_addresses"]), _when(node["previous_until"])
        )
    return table
