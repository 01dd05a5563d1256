"""``anycastlb lab failover``'s report: how long traffic took to move, and what it cost the client.

Two clocks answer "how long": the router's table (when the VIP's next hop changed, sampled every
2 ms) and the client (when its first request answered through the other PoP came back, all later
ones going there too). The client sends one request at a time with a 2 s timeout, so a request in
flight at the fault holds the next one back: after a silent death it waits out that timeout, or
its SYN is answered only on the kernel's retry 1 s later. The client's figure then says more about
the client than about the network, and the report marks it instead of letting it read as a 2 s
failover next to a route that moved in 200 ms.
"""

from rich.console import Console
from rich.table import Table

from anycastlb.lab.failover import MODE_MEANINGS, FailoverResult
from anycastlb.lab.timeline import ClientWait, Movement
from anycastlb.lab.wide import print_whole

__all__ = ["render_failover"]

_MARKS: dict[ClientWait, str] = {"timeout": "*", "retry": "†"}  # a client figure the client set


def _ms(seconds: float | None) -> str:
    return "[red]never[/]" if seconds is None else f"{seconds * 1000:.0f} ms"


def _client_cell(movement: Movement) -> str:
    mark = "" if movement.client_wait is None else _MARKS[movement.client_wait]
    return _ms(movement.answered_after) + mark


def _row(table: Table, phase: str, movement: Movement) -> None:
    failed = len(movement.failed)
    errors = ", ".join(f"{kind} x{count}" for kind, count in movement.errors.items())
    table.add_row(
        phase,
        _ms(movement.route_after),
        _client_cell(movement),
        f"{'[green]' if failed == 0 else '[red]'}{failed}[/] of {movement.attempts}",
        ", ".join(f"{pop} {count}" for pop, count in sorted(movement.answered_by.items())),
        errors,
    )


def _legend(result: FailoverResult) -> list[str]:
    timeout = f"{result.client_timeout:g} s"
    lines = [
        f"{result.mode}: {result.pop}'s {MODE_MEANINGS[result.mode].removeprefix('its ')}"
        if result.mode in ("cut", "silent")
        else f"{result.mode}: {MODE_MEANINGS[result.mode]}",
        "route moved after: from the fault until the router's table sent the VIP to the other PoP "
        "(sampled every 2 ms)",
        "client answered after: until the client (one request at a time, a new connection each, "
        f"{timeout} timeout) got its first answer through the other PoP, the later ones going there too",
    ]
    waits = {m.client_wait for m in (result.moved, result.returned) if m is not None}
    if "timeout" in waits:
        lines.append(
            f"{_MARKS['timeout']} set by the client's {timeout} timeout, not by the network: the request in "
            "flight at the fault got neither an answer nor a reset (its packets went to a PoP that was "
            "gone), and the client sends its next request only after giving up; the route moved after "
            "the time beside it"
        )
    if "retry" in waits:
        lines.append(
            f"{_MARKS['retry']} set by the client's kernel, not by the network: this request was in flight "
            "when the route moved and its lost SYN reached the other PoP only when sent again (1 s, then "
            "2 s later); the route moved after the time beside it"
        )
    return lines


def render_failover(result: FailoverResult, console: Console) -> None:
    table = Table(title=f"failover of {result.pop} ({result.mode})")
    for column in (
        "phase",
        "route moved after",
        "client answered after",
        "failed connections",
        "answered by",
        "errors",
    ):
        table.add_column(column)
    _row(table, f"{result.pop} {result.mode}", result.moved)
    if result.returned is not None:
        _row(table, f"{result.pop} back", result.returned)
    print_whole(console, table)
    for line in _legend(result):
        print_whole(console, f"[dim]{line}[/]", highlight=False)
    if result.mode == "kill":
        if result.survivors:
            console.print(f"[red]processes that outlived the killed edge:[/] {'; '.join(result.survivors)}")
        else:
            console.print("[green]nothing outlived the killed edge (ExaBGP died with it)[/]")
    for line in result.held_down:
        print_whole(
            console, f"[yellow]the return was held down by flap dampening:[/] {line}", highlight=False
        )
    print_whole(console, f"{result.pop}'s edge log: {result.edge_log}", highlight=False)
